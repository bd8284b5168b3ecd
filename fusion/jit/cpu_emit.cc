// cpu_emit.cc - statements -> one C++ unit (cpu_emit.h). Mirrors PointwiseKernel::Builder
// (fusion/exec/pointwise.cc) decision for decision - which values are uniform (computed once per
// call), where casts are inserted, how temporaries and scalar results are rounded - so the
// compiled code gives the VM's results bit for bit (with -ffp-contract=off, no -ffast-math).
// Layout of a unit: prelude; `struct U` (the uniforms); uniforms(); the element loop twice, with
// and without __restrict pointers; fccl_jit_run picks the restrict loop unless two bound tensors
// overlap; fccl_jit_scalars.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "fusion/exec/pointwise_ops.h"
#include "fusion/jit/cpu_emit.h"
#include "fusion/jit/cpu_spell.h"

namespace fccl::fusion::jit {

using ir::DType;
using ir::Node;
using ir::Op;
using ir::VarKind;
using pw::CT;
using pw::ctDType;
using pw::storedAsComputed;

namespace {

class Emitter {
 public:
  Emitter(const ir::Program& p, std::string* err) : p_(p), err_(err) {
    nodeVal_.assign(p.nodes.size(), -1);
    varVal_.assign(p.vars.size(), -1);
    ptrOf_.assign(p.vars.size(), -1);
  }

  bool statement(int32_t si) {
    if (si < 0 || static_cast<size_t>(si) >= p_.stmts.size()) return fail("statement index out of range");
    const ir::Stmt& s = p_.stmts[static_cast<size_t>(si)];
    if (s.var < 0 || static_cast<size_t>(s.var) >= p_.vars.size() || s.value < 0 ||
        static_cast<size_t>(s.value) >= p_.nodes.size())
      return fail("malformed statement " + std::to_string(si));
    const ir::Var& dst = p_.vars[static_cast<size_t>(s.var)];
    where_ = "statement '" + dst.name + " = ...'";
    if (dst.dtype == DType::Untyped) return fail("'" + dst.name + "' is untyped (run the checker first)");
    int v = emit(s.value);
    if (v < 0) return false;
    const CT want = pw::computeType(dst.dtype);
    if (dst.isScalar()) {
      if (!vals_[v].uniform) return fail("a tensor value stored in scalar '" + dst.name + "'");
      // As the VM: later Refs see declared scalars rounded to their type.
      if (dst.kind != VarKind::Temp || vals_[v].ct != want)
        v = cast(v, dst.kind == VarKind::Temp ? ctDType(want) : dst.dtype);
      varVal_[static_cast<size_t>(s.var)] = v;
      results_ += "  s[" + std::to_string(s.var) + "] = static_cast<double>(" + vals_[v].name + ");\n";
      maxScalarVar_ = std::max(maxScalarVar_, s.var);
      hasResults_ = true;
      return true;
    }
    if (dst.kind == VarKind::In) return fail("input tensor '" + dst.name + "' is assigned");
    if (dst.kind == VarKind::Scalar) return fail("scalar input '" + dst.name + "' is assigned");
    if (vals_[v].ct != want) v = cast(v, ctDType(want));
    const std::string stored = toStorage(vals_[v].ct, dst.dtype, vals_[v].name);
    if (dst.kind == VarKind::Temp) {
      // Tile-local for later statements (a local copy: later stores cannot change it), and
      // stored when the runtime bound a buffer for it.
      varVal_[static_cast<size_t>(s.var)] = v;
      const std::string ptr = pointer(s.var, false, true);
      body_ += "    if (" + ptr + ") " + ptr + "[j] = " + stored + ";\n";
      return true;
    }
    const std::string ptr = pointer(s.var, true, true);
    body_ += "    " + ptr + "[j] = " + stored + ";\n";
    return true;
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
    auto loop = [&](const char* name, const char* restrict) {
      std::string body = body_;
      std::string ps = params;
      for (size_t pos = 0; (pos = ps.find("* R ", pos)) != std::string::npos;)
        ps.replace(pos, 4, std::string("* ") + restrict), pos += 2;
      return "static void " + std::string(name) + "(const U u, const long long begin, const long long n" +
             ps + ") {\n  (void)u; (void)begin;\n  for (long long j = 0; j < n; ++j) {\n" + body + "  }\n}\n";
    };
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
    s += "    loopAliased(u, begin, n" + args + ");\n";
    s += "  else\n    loopRestrict(u, begin, n" + args + ");\n}\n\n";
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

  bool fail(const std::string& msg) {
    *err_ = where_.empty() ? msg : where_ + ": " + msg;
    return false;
  }
  int unsupported(const Node& n, const std::string& what) {
    const std::string at =
        n.loc.line ? " at " + std::to_string(n.loc.line) + ":" + std::to_string(n.loc.col) : "";
    fail(std::string("'") + ir::opName(n.op) + "'" + at + " " + what);
    return -1;
  }

  // Defines a value: a field of U set in uniforms(), or a const local of the loop body.
  int define(bool uniform, CT ct, const std::string& expr) {
    const int id = static_cast<int>(vals_.size());
    Val v;
    v.uniform = uniform;
    v.ct = ct;
    if (uniform) {
      v.name = "u.v" + std::to_string(id);
      fields_ += std::string("  ") + ctName(ct) + " v" + std::to_string(id) + ";\n";
      uni_ += "  " + v.name + " = " + expr + ";\n";
    } else {
      v.name = name("e", id);
      body_ += std::string("    const ") + ctName(ct) + " " + v.name + " = " + expr + ";\n";
    }
    vals_.push_back(v);
    return id;
  }

  // The pointer to var's elements at logical index begin (one per var, so a tensor read and
  // written by the statements uses a single pointer and __restrict stays legal).
  std::string pointer(int32_t var, bool required, bool written) {
    int& k = ptrOf_[static_cast<size_t>(var)];
    if (k < 0) {
      k = static_cast<int>(ptrs_.size());
      Ptr q;
      q.var = var;
      q.dtype = p_.vars[static_cast<size_t>(var)].dtype;
      ptrs_.push_back(q);
    }
    ptrs_[static_cast<size_t>(k)].required |= required;
    ptrs_[static_cast<size_t>(k)].written |= written;
    return name("p", k);
  }

  int cast(int v, DType to) {
    const Val x = vals_[v];
    return define(x.uniform, pw::computeType(to), fromStorage(to, toStorage(x.ct, to, x.name)));
  }

  int leaf(const std::string& asDouble, DType t) {
    return define(true, pw::computeType(t), fromStorage(t, toStorage(CT::F64, t, asDouble)));
  }

  int emit(ir::NodeId id) {
    if (id < 0 || static_cast<size_t>(id) >= p_.nodes.size()) return fail("node index out of range"), -1;
    int& memo = nodeVal_[static_cast<size_t>(id)];
    if (memo >= 0) return memo;
    const Node& n = p_.node(id);
    if (n.dtype == DType::Untyped) return unsupported(n, "is untyped (run the checker first)");
    for (int i = 0; i < ir::opArity(n.op); ++i)
      if (n.args[static_cast<size_t>(i)] < 0 || n.args[static_cast<size_t>(i)] >= id)
        return unsupported(n, "has an operand that is not an earlier node");
    memo = emitNode(n);
    return memo;
  }

  int emitNode(const Node& n) {
    const CT ct = pw::computeType(n.dtype);
    switch (n.op) {
      case Op::Literal:  // rounded to the compute type; opaque: never folded into a libm call
        return leaf("opaque(" + literal(n.value) + ")", ctDType(ct));
      case Op::NRanks:
        return leaf("static_cast<double>(a->nranks)", DType::I32);
      case Op::Rank:
        return leaf("static_cast<double>(a->rank)", DType::I32);
      case Op::Ref: {
        if (n.var < 0 || static_cast<size_t>(n.var) >= p_.vars.size())
          return unsupported(n, "names no variable");
        if (varVal_[static_cast<size_t>(n.var)] >= 0) return varVal_[static_cast<size_t>(n.var)];
        const ir::Var& v = p_.vars[static_cast<size_t>(n.var)];
        if (v.dtype == DType::Untyped) return unsupported(n, "reads an untyped variable");
        if (v.isScalar()) {
          maxScalarVar_ = std::max(maxScalarVar_, n.var);
          return leaf("a->scalars[" + std::to_string(n.var) + "]", v.dtype);
        }
        const std::string ptr = pointer(n.var, true, false);
        return define(false, pw::computeType(v.dtype), fromStorage(v.dtype, ptr + "[j]"));
      }
      case Op::Slice:
        return emit(n.args[0]);  // logical indexing: this rank's slice is [i]
      default:
        break;
    }
    if (ir::isCollective(n.op)) return unsupported(n, "is a collective; it runs as its own step");
    if (ir::isWholeReduction(n.op)) return unsupported(n, "reduces a whole tensor; it runs as its own step");
    const int a = emit(n.args[0]);
    if (a < 0) return -1;
    const std::string notDefined =
        std::string("is not defined on ") + ir::dtypeName(p_.node(n.args[0]).dtype);
    if (n.op == Op::Cast) {
      const DType from = p_.node(n.args[0]).dtype;
      if (from == n.dtype || (vals_[a].ct == ct && storedAsComputed(n.dtype))) return a;
      return cast(a, n.dtype);
    }
    const Val x = vals_[a];
    if (ir::opArity(n.op) == 1) {
      std::string e;
      const std::string T = ctName(x.ct);
      switch (n.op) {
        case Op::Neg:
          if (isFloatCT(x.ct))
            e = "-" + x.name;
          else if (isIntCT(x.ct))
            e = "wsub(" + T + "(0), " + x.name + ")";
          break;
        case Op::Abs:
          if (isFloatCT(x.ct))
            e = "std::fabs(" + x.name + ")";
          else if (isIntCT(x.ct))
            e = x.name + " < 0 ? wsub(" + T + "(0), " + x.name + ") : " + x.name;
          break;
        case Op::Not:
          if (x.ct == CT::B8) e = "static_cast<u8>(" + x.name + " ^ 1)";
          break;
        case Op::Sqrt:
          if (isFloatCT(x.ct)) e = "std::sqrt(" + x.name + ")";
          break;
        case Op::Rsqrt:
          if (isFloatCT(x.ct)) e = T + "(1) / std::sqrt(" + x.name + ")";
          break;
        case Op::Exp:
          if (isFloatCT(x.ct)) e = "std::exp(" + x.name + ")";
          break;
        case Op::Log:
          if (isFloatCT(x.ct)) e = "std::log(" + x.name + ")";
          break;
        case Op::IsFinite:
          if (x.ct == CT::F32)
            e = "static_cast<u8>((bitsOf(" + x.name + ") & 0x7f800000u) != 0x7f800000u)";
          else if (x.ct == CT::F64)
            e = "static_cast<u8>((bitsOf(" + x.name + ") & 0x7ff0000000000000ull) != 0x7ff0000000000000ull)";
          break;
        default:
          break;
      }
      if (e.empty()) return unsupported(n, notDefined);
      return define(x.uniform, ct, e);
    }
    int b = emit(n.args[1]);
    if (b < 0) return -1;
    if (n.op == Op::Dropout) {
      const int c = emit(n.args[2]);
      if (c < 0) return -1;
      if (!vals_[b].uniform || !vals_[c].uniform) return unsupported(n, "needs scalar p and seed");
      if (!isFloatCT(x.ct)) return unsupported(n, "needs a float operand");
      // dropout.h's rule, with x / (1 - p) in double as the VM and the reference compute it.
      const int p64 = cast(b, DType::F64), s64 = cast(c, DType::I64);
      const int thr =
          define(true, CT::I64, "static_cast<i64>(fccl::ir::dropoutThreshold(" + vals_[p64].name + "))");
      const std::string keep = "fccl::ir::dropoutKeep(static_cast<unsigned long long>(" + vals_[s64].name +
                               "), static_cast<unsigned long long>(begin + j), static_cast<unsigned>(" +
                               vals_[thr].name + "))";
      return define(false, ct,
                    "static_cast<" + std::string(ctName(x.ct)) + ">(" + keep + " ? static_cast<double>(" +
                        x.name + ") / (1 - " + vals_[p64].name + ") : 0.0)");
    }
    if (n.op == Op::Select) {
      const int c = emit(n.args[2]);
      if (c < 0) return -1;
      if (x.ct != CT::B8 || vals_[b].ct != vals_[c].ct) return unsupported(n, "has mismatched operand types");
      const bool uni = x.uniform && vals_[b].uniform && vals_[c].uniform;
      return define(uni, vals_[b].ct, x.name + " ? " + vals_[b].name + " : " + vals_[c].name);
    }
    // Binary. Pow's integer exponent of a float base is converted to the base's type first.
    if (n.op == Op::Pow && vals_[b].ct != x.ct) b = cast(b, ctDType(x.ct));
    const Val y = vals_[b];
    if (x.ct != y.ct) return unsupported(n, "has operands of different types");
    const std::string A = x.name, B = y.name;
    const bool fl = isFloatCT(x.ct), in = isIntCT(x.ct), bo = x.ct == CT::B8;
    auto arith = [&](const char* sym, const char* fn) {
      return fl ? A + " " + sym + " " + B : in ? std::string(fn) + "(" + A + ", " + B + ")" : "";
    };
    auto cmp = [&](const char* sym) { return bo ? "" : "static_cast<u8>(" + A + " " + sym + " " + B + ")"; };
    std::string e;
    switch (n.op) {
      case Op::Add:
        e = arith("+", "wadd");
        break;
      case Op::Sub:
        e = arith("-", "wsub");
        break;
      case Op::Mul:
        e = arith("*", "wmul");
        break;
      case Op::Div:
        e = arith("/", "idiv");
        break;
      case Op::Pow:
        e = fl ? "std::pow(" + A + ", " + B + ")" : in ? "ipow(" + A + ", " + B + ")" : "";
        break;
      // fmin/fmax (a NaN operand is ignored) with the VM's tie rule: -0 vs +0 gives b.
      case Op::Min:
        e = fl   ? "(" + A + " < " + B + " || " + B + " != " + B + ") ? " + A + " : " + B
            : in ? A + " < " + B + " ? " + A + " : " + B
                 : "";
        break;
      case Op::Max:
        e = fl   ? "(" + A + " > " + B + " || " + B + " != " + B + ") ? " + A + " : " + B
            : in ? A + " > " + B + " ? " + A + " : " + B
                 : "";
        break;
      case Op::Lt:
        e = cmp("<");
        break;
      case Op::Le:
        e = cmp("<=");
        break;
      case Op::Gt:
        e = cmp(">");
        break;
      case Op::Ge:
        e = cmp(">=");
        break;
      case Op::Eq:
        e = "static_cast<u8>(" + A + " == " + B + ")";
        break;
      case Op::Ne:
        e = "static_cast<u8>(" + A + " != " + B + ")";
        break;
      case Op::And:
        e = bo ? "static_cast<u8>(" + A + " & " + B + ")" : "";
        break;
      case Op::Or:
        e = bo ? "static_cast<u8>(" + A + " | " + B + ")" : "";
        break;
      default:
        break;
    }
    if (e.empty()) return unsupported(n, notDefined);
    return define(x.uniform && y.uniform, ct, e);
  }

  const ir::Program& p_;
  std::string* err_;
  std::string where_;
  std::vector<int> nodeVal_, varVal_, ptrOf_;
  std::vector<Val> vals_;
  std::vector<Ptr> ptrs_;
  std::string fields_, uni_, body_, results_;
  int32_t maxScalarVar_ = -1;
  bool hasResults_ = false;
};

}  // namespace

bool emitCpuUnit(const ir::Program& p, const std::vector<int32_t>& stmts, EmittedUnit* out,
                 std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  Emitter e(p, error);
  for (int32_t si : stmts)
    if (!e.statement(si)) return false;
  out->source = e.unit();
  out->maxScalarVar = e.maxScalarVar();
  out->hasScalarResults = e.hasResults();
  return true;
}

}  // namespace fccl::fusion::jit
