// cpu_emit.cc - a lowered pointwise form -> one C++ unit (cpu_emit.h). The form has decided every
// type, cast and rounding point, and which values are uniform; this file only spells each value
// as C++ (with -ffp-contract=off and no -ffast-math the compiled code gives the VM's results bit
// for bit): uniforms become fields of `struct U` set once per call in uniforms(), per-element
// values const locals of the element loop, loads and stores pointer accesses. Layout of a unit:
// prelude; `struct U`; uniforms(); the element loop twice, with and without __restrict pointers;
// fccl_jit_run picks the restrict loop unless two bound tensors overlap; fccl_jit_scalars. A unit
// with a RingFusion templates both loops on kRing (0: plain; 1: the reduced var's loads add the
// own chunk; 2: and divide) and adds fccl_jit_run_ring.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "fusion/jit/cpu_emit.h"
#include "fusion/jit/cpu_spell.h"

namespace fccl::fusion::jit {

using ir::DType;
using lowered::CT;
using lowered::ctDType;
using lowered::isFloatCT;
using lowered::StmtKind;
using lowered::VOp;

namespace {

class Emitter {
 public:
  Emitter(const lowered::PointwiseForm& f, const RingFusion& ring) : f_(f) {
    valOf_.assign(f.values.size(), -1);
    maxScalarVar_ = f.maxScalarVar;
    if (ring.reducedVar >= 0 && ring.forwardVar >= 0 && ringAllowed(f, ring)) ring_ = ring;
  }

  bool hasRing() const { return ring_.reducedVar >= 0; }

  // Values [from, st.valuesEnd), then the statement's effect.
  void statement(const lowered::Stmt& st) {
    for (; next_ < static_cast<size_t>(st.valuesEnd); ++next_) value(next_);
    const Val& v = vals_[static_cast<size_t>(valOf_[static_cast<size_t>(st.value)])];
    switch (st.kind) {
      case StmtKind::ScalarResult:
        results_ += "  s[" + std::to_string(st.var) + "] = static_cast<double>(" + v.name + ");\n";
        hasResults_ = true;
        return;
      case StmtKind::Buffer: {  // stored only when the runtime bound a buffer for it
        const std::string ptr = pointer(st.var, st.dtype, false, true);
        body_ += "    if (" + ptr + ") " + ptr + "[j] = " + toStorage(v.ct, st.dtype, v.name) + ";\n";
        return;
      }
      case StmtKind::Store:
        body_ += "    " + pointer(st.var, st.dtype, true, true) +
                 "[j] = " + toStorage(v.ct, st.dtype, v.name) + ";\n";
        if (hasRing() && st.var == ring_.forwardVar) {
          forwardDType_ = st.dtype;
          body_ += "    if (kRing) qm[j] = " + toStorage(v.ct, st.dtype, v.name) + ";\n";
        }
        return;
    }
  }

  std::string unit() const {
    std::string params, args, setup, ptrList, bytesList, writtenList;
    for (size_t i = 0; i < ptrs_.size(); ++i) {
      const Ptr& q = ptrs_[i];
      const std::string n = name("p", static_cast<long long>(i)), T = storageName(q.dtype);
      const std::string type = (q.written ? "" : "const ") + T + "* R ";
      params += ", " + type + n;
      args += ", " + n;
      const std::string v = std::to_string(q.var);
      const std::string t = "a->tensors[" + v + "]";
      const std::string at = "static_cast<" + T + "*>(" + t + ".data) + (begin - " + t + ".base)";
      if (q.required)
        setup += "  " + T + "* const " + n + " = " + at + ";\n";
      else  // a buffered temporary: stored only when bound
        setup += "  " + T + "* const " + n + " = " + v + " < a->ntensors && " + t + ".data ? " + at +
                 " : nullptr;\n";
      ptrList += (i ? ", " : "") + n;
      bytesList += (i ? ", n * " : "n * ") + std::to_string(ir::dtypeBytes(q.dtype));
      writtenList += (i ? ", " : "") + std::string(q.written ? "true" : "false");
    }
    const std::string TA = hasRing() ? storageName(reducedDType_) : "",
                      TM = hasRing() ? storageName(forwardDType_) : "";
    if (hasRing()) params += ", const " + TA + "* R qa, " + TM + "* R qm, const " + TA + " qd";
    auto loop = [&](const char* name, const char* restrict) {
      std::string body = body_;
      std::string ps = params;
      for (size_t pos = 0; (pos = ps.find("* R ", pos)) != std::string::npos;)
        ps.replace(pos, 4, std::string("* ") + restrict), pos += 2;
      const std::string head = hasRing() ? "template <int kRing>\nstatic void " : "static void ";
      return head + std::string(name) + "(const U u, const long long begin, const long long n" + ps +
             ") {\n  (void)u; (void)begin;\n  for (long long j = 0; j < n; ++j) {\n" + body + "  }\n}\n";
    };
    // The loops' trailing arguments: none, or the ring operands (null in the plain entry).
    const std::string plain = hasRing() ? "<0>(u, begin, n" + args + ", nullptr, nullptr, " + TA + "(1))"
                                        : "(u, begin, n" + args + ")";
    std::string s = cpuPrelude();
    s += "\nnamespace {\n// Values computed once per call: literals, scalars, rank/nranks and what they "
         "make.\n";
    s += "struct U {\n" + fields_ + "  char unused;\n};\n";
    s += "void uniforms(const FcclJitArgs* a, U& u) {\n  (void)a; (void)u;\n" + uni_ + "}\n";
    s += "// Separate tensors do not overlap (the usual case): every pointer __restrict.\n";
    s += loop("loopRestrict", "__restrict ");
    s += "// Two bound tensors overlap (e.g. one buffer bound twice): plain pointers; elements are\n"
         "// still computed in order, so exact aliasing gives the VM's results.\n";
    s += loop("loopAliased", "");
    s += "}  // namespace\n\n";
    s += "extern \"C\" void fccl_jit_run(const FcclJitArgs* a, long long begin, long long end) {\n";
    s += "  if (end <= begin) return;\n  const long long n = end - begin;\n  U u;\n  uniforms(a, u);\n";
    s += setup;
    if (ptrs_.size() > 1) {
      s += "  const void* const ptrs[] = {" + ptrList + "};\n  const long long bytes[] = {" + bytesList +
           "};\n  const bool written[] = {" + writtenList + "};\n";
      s += "  if (anyOverlap(ptrs, bytes, written, " + std::to_string(ptrs_.size()) + "))\n";
    } else {
      s += "  if (false)\n";
    }
    s += "    loopAliased" + plain + ";\n";
    s += "  else\n    loopRestrict" + plain + ";\n}\n\n";
    if (hasRing()) {
      const auto eb = [](DType t) { return std::to_string(ir::dtypeBytes(t)); };
      s += "extern \"C\" void fccl_jit_run_ring(const FcclJitArgs* a, long long begin, long long end, "
           "const void* own, void* forward, int divisor) {\n";
      s += "  if (end <= begin) return;\n  const long long n = end - begin;\n  U u;\n  uniforms(a, u);\n";
      s += setup;
      s += "  const " + TA + "* const qa = static_cast<const " + TA + "*>(own);\n  " + TM +
           "* const qm = static_cast<" + TM + "*>(forward);\n  const " + TA + " qd = " + TA + "(divisor);\n";
      s += "  const void* const ptrs[] = {" + ptrList + ", qa, qm};\n  const long long bytes[] = {" +
           bytesList + ", n * " + eb(reducedDType_) + ", n * " + eb(forwardDType_) +
           "};\n  const bool written[] = {" + writtenList + ", false, true};\n";
      s += "  const bool aliased = anyOverlap(ptrs, bytes, written, " + std::to_string(ptrs_.size() + 2) +
           ");\n";
      const std::string tail = "(u, begin, n" + args + ", qa, qm, qd);\n";
      s += "  if (aliased && divisor > 1)\n    loopAliased<2>" + tail;
      s += "  else if (aliased)\n    loopAliased<1>" + tail;
      s += "  else if (divisor > 1)\n    loopRestrict<2>" + tail;
      s += "  else\n    loopRestrict<1>" + tail + "}\n\n";
    }
    s += "extern \"C\" void fccl_jit_scalars(const FcclJitArgs* a, double* s) {\n  U u;\n  uniforms(a, u);\n"
         "  (void)s;\n" +
         results_ + "}\n";
    return s;
  }

  int32_t maxScalarVar() const { return maxScalarVar_; }
  bool hasResults() const { return hasResults_; }

 private:
  struct Val {
    bool uniform = false;
    CT ct = CT::F64;
    std::string name;  // "u.vK" (uniform) or "eK" (a local of the element loop)
  };
  struct Ptr {
    int32_t var = -1;
    DType dtype = DType::F64;
    bool required = false, written = false;
  };

  // The ring entry needs a float reduced value that the step reads (reduceN's a + b is then one
  // C++ addition) and never stores, and a forwarded var it stores.
  static bool ringAllowed(const lowered::PointwiseForm& f, const RingFusion& r) {
    bool loaded = false, floatLoads = true, forwardStored = false;
    for (const lowered::Value& v : f.values)
      if (v.op == VOp::Load && v.var == r.reducedVar) {
        loaded = true;
        floatLoads &= v.dtype == DType::F32 || v.dtype == DType::F64;
      }
    for (const lowered::Stmt& st : f.stmts) {
      if (st.kind != StmtKind::ScalarResult && st.var == r.reducedVar) return false;
      if (st.kind == StmtKind::Store && st.var == r.forwardVar) forwardStored = true;
      if (st.kind == StmtKind::Buffer && st.var == r.forwardVar) return false;
    }
    return loaded && floatLoads && forwardStored && r.reducedVar != r.forwardVar;
  }

  // Defines a value: a field of U set in uniforms(), or a const local of the loop body.
  int define(bool uniform, CT ct, const std::string& expr) {
    const int id = static_cast<int>(vals_.size());
    Val v;
    v.uniform = uniform;
    v.ct = ct;
    if (uniform) {
      v.name = "u.v" + std::to_string(id);
      fields_ += std::string("  ") + cppType(ct) + " v" + std::to_string(id) + ";\n";
      uni_ += "  " + v.name + " = " + expr + ";\n";
    } else {
      v.name = name("e", id);
      body_ += std::string("    const ") + cppType(ct) + " " + v.name + " = " + expr + ";\n";
    }
    vals_.push_back(v);
    return id;
  }

  // The pointer to var's elements at logical index begin (one per var, so a tensor read and
  // written by the statements uses a single pointer and __restrict stays legal).
  std::string pointer(int32_t var, DType dtype, bool required, bool written) {
    if (ptrOf_.size() <= static_cast<size_t>(var)) ptrOf_.resize(static_cast<size_t>(var) + 1, -1);
    int& k = ptrOf_[static_cast<size_t>(var)];
    if (k < 0) {
      k = static_cast<int>(ptrs_.size());
      Ptr q;
      q.var = var;
      q.dtype = dtype;
      ptrs_.push_back(q);
    }
    ptrs_[static_cast<size_t>(k)].required |= required;
    ptrs_[static_cast<size_t>(k)].written |= written;
    return name("p", k);
  }

  // A scalar given as a double, rounded to dtype t (a uniform).
  int leaf(const std::string& asDouble, DType t) {
    return define(true, lowered::computeType(t), fromStorage(t, toStorage(CT::F64, t, asDouble)));
  }

  const Val& arg(const lowered::Value& x, int i) const {
    return vals_[static_cast<size_t>(valOf_[static_cast<size_t>(x.a[static_cast<size_t>(i)])])];
  }

  void value(size_t id) {
    const lowered::Value& x = f_.values[id];
    valOf_[id] = spell(x);
  }

  int spell(const lowered::Value& x) {
    switch (x.op) {
      case VOp::Const:  // opaque: never folded into a libm call
        return leaf("opaque(" + literal(x.value) + ")", ctDType(x.ct));
      case VOp::Scalar:
        return leaf("a->scalars[" + std::to_string(x.var) + "]", x.dtype);
      case VOp::NRanks:
        return leaf("static_cast<double>(a->nranks)", DType::I32);
      case VOp::Rank:
        return leaf("static_cast<double>(a->rank)", DType::I32);
      case VOp::Load: {
        const std::string at = pointer(x.var, x.dtype, true, false) + "[j]";
        if (!hasRing() || x.var != ring_.reducedVar) return define(false, x.ct, fromStorage(x.dtype, at));
        // Received partial + own chunk (reduceN), then / divisor (divide()), in the element type.
        reducedDType_ = x.dtype;
        const std::string T = storageName(x.dtype), sum = T + "(" + at + " + qa[j])";
        return define(false, x.ct,
                      fromStorage(x.dtype, "(kRing == 0 ? " + at + " : kRing == 1 ? " + sum + " : " + T +
                                               "(" + sum + " / qd))"));
      }
      case VOp::Cast: {
        const Val& a = arg(x, 0);
        return define(x.uniform, x.ct, fromStorage(x.dtype, toStorage(a.ct, x.dtype, a.name)));
      }
      case VOp::Dropout: {
        // dropout.h's rule, with x / (1 - p) in double as the VM and the reference compute it.
        const Val &v = arg(x, 0), &p = arg(x, 1), &seed = arg(x, 2);
        const int thr = define(true, CT::I64, "static_cast<i64>(fccl::ir::dropoutThreshold(" + p.name + "))");
        const std::string keep = "fccl::ir::dropoutKeep(static_cast<unsigned long long>(" + seed.name +
                                 "), static_cast<unsigned long long>(begin + j), static_cast<unsigned>(" +
                                 vals_[static_cast<size_t>(thr)].name + "))";
        return define(false, x.ct,
                      "static_cast<" + std::string(cppType(v.ct)) + ">(" + keep + " ? static_cast<double>(" +
                          v.name + ") / (1 - " + p.name + ") : 0.0)");
      }
      case VOp::Select:
        return define(x.uniform, x.ct, arg(x, 0).name + " ? " + arg(x, 1).name + " : " + arg(x, 2).name);
      default:
        break;
    }
    const Val& a = arg(x, 0);
    const std::string T = cppType(a.ct), A = a.name;
    const bool fl = isFloatCT(a.ct);
    if (lowered::vopArity(x.op) == 1) {
      std::string e;
      switch (x.op) {
        case VOp::Neg:
          e = fl ? "-" + A : "wsub(" + T + "(0), " + A + ")";
          break;
        case VOp::Abs:
          e = fl ? "std::fabs(" + A + ")" : A + " < 0 ? wsub(" + T + "(0), " + A + ") : " + A;
          break;
        case VOp::Not:
          e = "static_cast<u8>(" + A + " ^ 1)";
          break;
        case VOp::Sqrt:
          e = "std::sqrt(" + A + ")";
          break;
        case VOp::Rsqrt:
          e = T + "(1) / std::sqrt(" + A + ")";
          break;
        case VOp::Exp:
          e = "std::exp(" + A + ")";
          break;
        case VOp::Log:
          e = "std::log(" + A + ")";
          break;
        default:  // IsFinite
          e = a.ct == CT::F32
                  ? "static_cast<u8>((bitsOf(" + A + ") & 0x7f800000u) != 0x7f800000u)"
                  : "static_cast<u8>((bitsOf(" + A + ") & 0x7ff0000000000000ull) != 0x7ff0000000000000ull)";
          break;
      }
      return define(x.uniform, x.ct, e);
    }
    const std::string B = arg(x, 1).name;
    auto arith = [&](const char* sym, const char* fn) {
      return fl ? A + " " + sym + " " + B : std::string(fn) + "(" + A + ", " + B + ")";
    };
    auto cmp = [&](const char* sym) { return "static_cast<u8>(" + A + " " + sym + " " + B + ")"; };
    std::string e;
    switch (x.op) {
      case VOp::Add:
        e = arith("+", "wadd");
        break;
      case VOp::Sub:
        e = arith("-", "wsub");
        break;
      case VOp::Mul:
        e = arith("*", "wmul");
        break;
      case VOp::Div:
        e = arith("/", "idiv");
        break;
      case VOp::Pow:
        e = fl ? "std::pow(" + A + ", " + B + ")" : "ipow(" + A + ", " + B + ")";
        break;
      // A NaN operand is ignored; equal operands (-0 vs +0) give B.
      case VOp::Min:
        e = fl ? "(" + A + " < " + B + " || " + B + " != " + B + ") ? " + A + " : " + B
               : A + " < " + B + " ? " + A + " : " + B;
        break;
      case VOp::Max:
        e = fl ? "(" + A + " > " + B + " || " + B + " != " + B + ") ? " + A + " : " + B
               : A + " > " + B + " ? " + A + " : " + B;
        break;
      case VOp::Lt:
        e = cmp("<");
        break;
      case VOp::Le:
        e = cmp("<=");
        break;
      case VOp::Gt:
        e = cmp(">");
        break;
      case VOp::Ge:
        e = cmp(">=");
        break;
      case VOp::Eq:
        e = cmp("==");
        break;
      case VOp::Ne:
        e = cmp("!=");
        break;
      case VOp::And:
        e = cmp("&");
        break;
      default:  // Or
        e = cmp("|");
        break;
    }
    return define(x.uniform, x.ct, e);
  }

  const lowered::PointwiseForm& f_;
  size_t next_ = 0;         // the next form value to spell
  std::vector<int> valOf_;  // per form value: its Val
  std::vector<int> ptrOf_;  // per var: its pointer
  std::vector<Val> vals_;
  std::vector<Ptr> ptrs_;
  std::string fields_, uni_, body_, results_;
  int32_t maxScalarVar_ = -1;
  bool hasResults_ = false;
  RingFusion ring_;                  // reducedVar -1: no ring entry
  DType reducedDType_ = DType::F32;  // of the reduced var's loads
  DType forwardDType_ = DType::F32;  // of the forwarded var's stores
};

}  // namespace

bool emitCpuUnit(const lowered::PointwiseForm& f, EmittedUnit* out, std::string* error) {
  return emitCpuUnit(f, RingFusion{}, out, error);
}

bool emitCpuUnit(const lowered::PointwiseForm& f, const RingFusion& ring, EmittedUnit* out,
                 std::string* error) {
  for (const lowered::Value& v : f.values) {
    if ((v.op == VOp::Load || v.op == VOp::Scalar) && v.var < 0) {
      if (error) *error = "the JIT reads no node slots";
      return false;
    }
  }
  Emitter e(f, ring);
  for (const lowered::Stmt& st : f.stmts) e.statement(st);
  out->source = e.unit();
  out->maxScalarVar = e.maxScalarVar();
  out->hasScalarResults = e.hasResults();
  out->hasRing = e.hasRing();
  return true;
}

bool emitCpuUnit(const ir::Program& p, const std::vector<int32_t>& stmts, EmittedUnit* out,
                 std::string* error) {
  lowered::PointwiseForm f;
  return lowered::buildForm(p, stmts, {}, &f, error) && emitCpuUnit(f, out, error);
}

}  // namespace fccl::fusion::jit
