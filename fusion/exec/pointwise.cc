// pointwise.cc - PointwiseKernel: lowering statements to tile-VM instructions (compile) and
// walking them tile by tile (run). Lowering decides, per node, where its value lives: a tile
// register, a bound tensor read in place (f32/f64/i32/i64 need no conversion), or a uniform
// computed once per call; then a linear scan assigns registers so a tile's working set stays
// in L1. Kernels and their semantics: pointwise_ops.cc.
#include "fusion/exec/pointwise.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

namespace fccl::fusion {

using ir::DType;
using ir::Node;
using ir::NodeId;
using ir::Op;
using ir::Var;
using ir::VarKind;
using pw::CT;
using pw::ctDType;
using pw::storedAsComputed;

namespace {}  // namespace

class PointwiseKernel::Builder {
 public:
  Builder(PointwiseKernel& k, const ir::Program& p, std::string* err) : k_(k), p_(p), err_(err) {
    nodeValue_.assign(p.nodes.size(), -1);
    varValue_.assign(p.vars.size(), -1);
    directOf_.assign(p.vars.size(), -1);
    bcastOf_.clear();
    k_.values_.push_back(Value{});  // value 0: no operand
  }

  bool statement(int32_t si) {
    if (si < 0 || static_cast<size_t>(si) >= p_.stmts.size()) return fail("statement index out of range");
    const ir::Stmt& s = p_.stmts[static_cast<size_t>(si)];
    if (s.var < 0 || static_cast<size_t>(s.var) >= p_.vars.size() || s.value < 0 ||
        static_cast<size_t>(s.value) >= p_.nodes.size())
      return fail("malformed statement " + std::to_string(si));
    const Var& dst = p_.vars[static_cast<size_t>(s.var)];
    where_ = "statement '" + dst.name + " = ...'";
    if (dst.dtype == DType::Untyped) return fail("'" + dst.name + "' is untyped (run the checker first)");
    int32_t v = emit(s.value);
    if (v < 0) return false;
    const CT want = pw::computeType(dst.dtype);
    if (dst.isScalar()) {
      if (!isUniform(v)) return fail("a tensor value stored in scalar '" + dst.name + "'");
      // Later Refs see the value as the variable holds it: declared scalars rounded to their type.
      if (dst.kind != VarKind::Temp || val(v).ct != want)
        v = cast(v, dst.kind == VarKind::Temp ? ctDType(want) : dst.dtype);
      if (v < 0) return false;
      varValue_[static_cast<size_t>(s.var)] = v;
      // Declared scalar results and scalar temporaries alike: a later step (a Reduction, a
      // Fused hook) reads a scalar temporary from Bindings::scalars.
      k_.scalarResults_.push_back({s.var, v});
      return true;
    }
    if (dst.kind == VarKind::In) return fail("input tensor '" + dst.name + "' is assigned");
    if (dst.kind == VarKind::Scalar) return fail("scalar input '" + dst.name + "' is assigned");
    if (dst.kind == VarKind::Temp) {
      // Tile-local for later statements. A value read in place from a tensor is copied: a later
      // statement may overwrite that tensor before the temporary is read.
      if (val(v).ct != want) v = cast(v, ctDType(want));
      if (v < 0) return false;
      if (val(v).kind == Kind::Direct) {
        const int32_t r = newValue(Kind::Reg, want);
        body(pw::copyKernel(want), r, v);
        v = r;
      }
      varValue_[static_cast<size_t>(s.var)] = v;
      bound_.push_back(v);
      Instr& st = body(pw::storeKernel(val(v).ct, dst.dtype, isUniform(v)), direct(s.var, false), v);
      st.optional = true;
      return true;
    }
    // A declared tensor: let the instruction that made the value write it in place when no
    // conversion is needed (saves a pass over the tile), else store with rounding.
    const int32_t out = direct(s.var, true);
    if (storedAsComputed(dst.dtype) && val(v).ct == want && val(v).kind == Kind::Reg && !k_.body_.empty() &&
        k_.body_.back().out == v && std::find(bound_.begin(), bound_.end(), v) == bound_.end()) {
      k_.body_.back().out = out;  // operands may be `out` itself: same index, read first
      return true;
    }
    body(pw::storeKernel(val(v).ct, dst.dtype, isUniform(v)), out, v);
    return true;
  }

  // Superinstructions: a float + - * / whose only reader is the next instruction, itself a
  // float + - * /, merges into it (one loop instead of two, and one register pass fewer).
  // Adam's update goes from 14 to 10 tile instructions; results are unchanged (same roundings).
  void fuse() {
    std::vector<int32_t> readers(k_.values_.size(), 0);
    for (const Instr& in : k_.body_)
      for (int32_t o : {in.a, in.b, in.c}) ++readers[static_cast<size_t>(o)];
    std::vector<Instr> out;
    out.reserve(k_.body_.size());
    for (size_t i = 0; i < k_.body_.size(); ++i) {
      const Instr& in = k_.body_[i];
      if (i + 1 < k_.body_.size() && in.arith && k_.body_[i + 1].arith && val(in.out).kind == Kind::Reg &&
          readers[static_cast<size_t>(in.out)] == 1) {
        const Instr& next = k_.body_[i + 1];
        const bool left = next.a == in.out;
        const int32_t other = left ? next.b : next.a;
        const bool otherUni = left ? next.form == pw::Form::VU : next.form == pw::Form::UV;
        const pw::Kernel fn = pw::fusedKernel(in.op, next.op, val(in.out).ct, in.form, left, otherUni);
        if (fn && (next.a == in.out || next.b == in.out)) {
          Instr f;
          f.fn = fn;
          f.out = next.out;
          f.a = in.a;
          f.b = in.b;
          f.c = other;
          out.push_back(f);  // not `arith`: a fused instruction fuses no further
          ++i;
          continue;
        }
      }
      out.push_back(in);
    }
    k_.body_ = std::move(out);
  }

  // Register allocation: a linear scan over the per-tile instructions. An instruction's output
  // gets its slot before its operands' slots are released, so no kernel writes a register it
  // is still reading at another index. Broadcast registers stay live for the whole call.
  void allocate() {
    std::vector<int32_t> lastUse(k_.values_.size(), -1);
    for (size_t i = 0; i < k_.body_.size(); ++i) {
      const Instr& in = k_.body_[i];
      for (int32_t o : {in.a, in.b, in.c}) lastUse[static_cast<size_t>(o)] = static_cast<int32_t>(i);
    }
    int32_t slots = 0;
    for (Value& v : k_.values_)
      if (v.kind == Kind::Bcast) v.index = slots++;
    std::vector<int32_t> freeSlots;
    auto take = [&]() {
      if (freeSlots.empty()) return slots++;
      const int32_t s = freeSlots.back();
      freeSlots.pop_back();
      return s;
    };
    for (size_t i = 0; i < k_.body_.size(); ++i) {
      const Instr& in = k_.body_[i];
      Value& out = k_.values_[static_cast<size_t>(in.out)];
      if (out.kind == Kind::Reg && out.index < 0) out.index = take();
      int32_t freed[3] = {-1, -1, -1};
      int nf = 0;
      for (int32_t o : {in.a, in.b, in.c}) {
        const Value& ov = k_.values_[static_cast<size_t>(o)];
        if (ov.kind == Kind::Reg && lastUse[static_cast<size_t>(o)] == static_cast<int32_t>(i) &&
            std::find(freed, freed + nf, o) == freed + nf) {
          freed[nf++] = o;
          freeSlots.push_back(ov.index);
        }
      }
      if (out.kind == Kind::Reg && lastUse[static_cast<size_t>(in.out)] <= static_cast<int32_t>(i))
        freeSlots.push_back(out.index);  // never read (a dead temporary)
    }
    k_.slots_ = slots;
  }

 private:
  bool fail(const std::string& msg) {
    *err_ = where_.empty() ? msg : where_ + ": " + msg;
    return false;
  }
  const Value& val(int32_t v) const { return k_.values_[static_cast<size_t>(v)]; }
  bool isUniform(int32_t v) const { return val(v).kind == Kind::Uniform; }

  int32_t newValue(Kind kind, CT ct) {
    Value v;
    v.kind = kind;
    v.ct = ct;
    if (kind == Kind::Uniform) {
      v.index = static_cast<int32_t>(k_.uniformInit_.size());
      k_.uniformInit_.push_back(0);
    }
    k_.values_.push_back(v);
    return static_cast<int32_t>(k_.values_.size() - 1);
  }

  Instr& body(pw::Kernel fn, int32_t out, int32_t a, int32_t b = 0, int32_t c = 0) {
    Instr in;
    in.fn = fn;
    in.out = out;
    in.a = a;
    in.b = b;
    in.c = c;
    k_.body_.push_back(in);
    return k_.body_.back();
  }
  void pre(pw::Kernel fn, int32_t out, int32_t a, int32_t b = 0, int32_t c = 0, int32_t n = 1) {
    Instr in;
    in.fn = fn;
    in.out = out;
    in.a = a;
    in.b = b;
    in.c = c;
    in.n = n;
    k_.pre_.push_back(in);
  }

  // The in-place value of tensor `var` (one per variable).
  int32_t direct(int32_t var, bool required) {
    int32_t& d = directOf_[static_cast<size_t>(var)];
    if (d < 0) {
      d = newValue(Kind::Direct, pw::computeType(p_.vars[static_cast<size_t>(var)].dtype));
      Direct dd;
      dd.var = var;
      dd.value = d;
      dd.elemBytes = ir::dtypeBytes(p_.vars[static_cast<size_t>(var)].dtype);
      k_.values_[static_cast<size_t>(d)].index = static_cast<int32_t>(k_.directs_.size());
      k_.directs_.push_back(dd);
    }
    if (required) k_.directs_[static_cast<size_t>(val(d).index)].required = true;
    return d;
  }

  // A uniform as a tile register (filled once per call).
  int32_t bcast(int32_t u) {
    for (auto [from, to] : bcastOf_)
      if (from == u) return to;
    const int32_t r = newValue(Kind::Bcast, val(u).ct);
    pre(pw::fillKernel(val(u).ct), r, u, 0, 0, pw::kTile);
    bcastOf_.push_back({u, r});
    return r;
  }
  int32_t vec(int32_t v) { return isUniform(v) ? bcast(v) : v; }

  // Converts value v to dtype `to` (rounding to it); uniform in, uniform out.
  int32_t cast(int32_t v, DType to) {
    const pw::Kernel fn = pw::castKernel(val(v).ct, to);
    if (!fn) return fail(std::string("no conversion to ") + ir::dtypeName(to)), -1;
    const int32_t out = newValue(isUniform(v) ? Kind::Uniform : Kind::Reg, pw::computeType(to));
    if (isUniform(v))
      pre(fn, out, v);
    else
      body(fn, out, v);
    return out;
  }

  int32_t leaf(Leaf::From from, int32_t var, DType dtype) {
    const int32_t u = newValue(Kind::Uniform, pw::computeType(dtype));
    Leaf l;
    l.from = from;
    l.var = var;
    l.dtype = dtype;
    l.uniform = val(u).index;
    k_.leaves_.push_back(l);
    if (from == Leaf::From::Scalar) k_.maxScalarVar_ = std::max(k_.maxScalarVar_, var);
    return u;
  }

  int32_t unsupported(const Node& n, const char* what) {
    std::string where =
        n.loc.line ? " at " + std::to_string(n.loc.line) + ":" + std::to_string(n.loc.col) : "";
    fail(std::string("'") + ir::opName(n.op) + "'" + where + " " + what);
    return -1;
  }

  int32_t emit(NodeId id) {
    if (id < 0 || static_cast<size_t>(id) >= p_.nodes.size()) return fail("node index out of range"), -1;
    int32_t& memo = nodeValue_[static_cast<size_t>(id)];
    if (memo >= 0) return memo;
    const Node& n = p_.node(id);
    if (n.dtype == DType::Untyped) return unsupported(n, "is untyped (run the checker first)");
    for (int i = 0; i < ir::opArity(n.op); ++i)
      if (n.args[static_cast<size_t>(i)] < 0 || n.args[static_cast<size_t>(i)] >= id)
        return unsupported(n, "has an operand that is not an earlier node");
    memo = emitNode(n);
    return memo;
  }

  int32_t emitNode(const Node& n) {
    const CT ct = pw::computeType(n.dtype);
    switch (n.op) {
      case Op::Literal: {
        const int32_t u = newValue(Kind::Uniform, ct);
        pw::scalarToCompute(n.value, ctDType(ct), &k_.uniformInit_[static_cast<size_t>(val(u).index)]);
        return u;
      }
      case Op::NRanks:
        return leaf(Leaf::From::NRanks, -1, DType::I32);
      case Op::Rank:
        return leaf(Leaf::From::Rank, -1, DType::I32);
      case Op::Ref: {
        if (n.var < 0 || static_cast<size_t>(n.var) >= p_.vars.size())
          return unsupported(n, "names no variable");
        if (varValue_[static_cast<size_t>(n.var)] >= 0) return varValue_[static_cast<size_t>(n.var)];
        const Var& v = p_.vars[static_cast<size_t>(n.var)];
        if (v.dtype == DType::Untyped) return unsupported(n, "reads an untyped variable");
        if (v.isScalar()) return leaf(Leaf::From::Scalar, n.var, v.dtype);
        const int32_t d = direct(n.var, true);
        if (storedAsComputed(v.dtype)) return d;
        const int32_t r = newValue(Kind::Reg, pw::computeType(v.dtype));
        body(pw::loadKernel(v.dtype), r, d);
        return r;
      }
      case Op::Slice:
        return emit(n.args[0]);  // logical indexing: this rank's slice is [i]
      default:
        break;
    }
    if (ir::isCollective(n.op)) return unsupported(n, "is a collective; it runs as its own step");
    if (ir::isWholeReduction(n.op)) return unsupported(n, "reduces a whole tensor; it runs as its own step");
    const int32_t a = emit(n.args[0]);
    if (a < 0) return -1;
    const int arity = ir::opArity(n.op);
    if (n.op == Op::Cast) {
      const DType from = p_.node(n.args[0]).dtype;
      if (from == n.dtype || (val(a).ct == ct && storedAsComputed(n.dtype))) return a;
      return cast(a, n.dtype);
    }
    if (arity == 1) {
      const pw::Kernel fn = pw::unaryKernel(n.op, val(a).ct);
      if (!fn)
        return unsupported(
            n, (std::string("is not defined on ") + ir::dtypeName(p_.node(n.args[0]).dtype)).c_str());
      const int32_t out = newValue(isUniform(a) ? Kind::Uniform : Kind::Reg, ct);
      if (isUniform(a))
        pre(fn, out, a);
      else
        body(fn, out, a);
      return out;
    }
    int32_t b = emit(n.args[1]);
    if (b < 0) return -1;
    if (n.op == Op::Dropout) {
      const int32_t c = emit(n.args[2]);
      if (c < 0) return -1;
      if (!isUniform(b) || !isUniform(c)) return unsupported(n, "needs scalar p and seed");
      const int32_t p64 = cast(b, DType::F64), s64 = cast(c, DType::I64);
      if (p64 < 0 || s64 < 0) return -1;
      const pw::Kernel fn = pw::dropoutKernel(val(a).ct);
      if (!fn) return unsupported(n, "needs a float operand");
      const int32_t out = newValue(Kind::Reg, ct);
      body(fn, out, vec(a), p64, s64);
      return out;
    }
    if (n.op == Op::Select) {
      const int32_t c = emit(n.args[2]);
      if (c < 0) return -1;
      if (val(a).ct != CT::B8 || val(b).ct != val(c).ct)
        return unsupported(n, "has mismatched operand types");
      const pw::Kernel fn = pw::selectKernel(val(b).ct);
      if (isUniform(a) && isUniform(b) && isUniform(c)) {
        const int32_t out = newValue(Kind::Uniform, val(b).ct);
        pre(fn, out, a, b, c);
        return out;
      }
      const int32_t out = newValue(Kind::Reg, val(b).ct);
      body(fn, out, vec(a), vec(b), vec(c));
      return out;
    }
    // Binary. Pow's integer exponent of a float base is converted to the base's type first.
    if (n.op == Op::Pow && val(b).ct != val(a).ct) {
      b = cast(b, ctDType(val(a).ct));
      if (b < 0) return -1;
    }
    if (val(a).ct != val(b).ct) return unsupported(n, "has operands of different types");
    const bool ua = isUniform(a), ub = isUniform(b);
    const pw::Form form = ua && !ub ? pw::Form::UV : (!ua && ub ? pw::Form::VU : pw::Form::VV);
    const pw::Kernel fn = pw::binaryKernel(n.op, val(a).ct, form);
    if (!fn)
      return unsupported(
          n, (std::string("is not defined on ") + ir::dtypeName(p_.node(n.args[0]).dtype)).c_str());
    const int32_t out = newValue(ua && ub ? Kind::Uniform : Kind::Reg, ct);
    if (ua && ub) {
      pre(fn, out, a, b);
    } else {
      Instr& in = body(fn, out, a, b);
      in.arith = (ct == CT::F32 || ct == CT::F64) &&
                 (n.op == Op::Add || n.op == Op::Sub || n.op == Op::Mul || n.op == Op::Div);
      in.op = n.op;
      in.form = form;
    }
    return out;
  }

  PointwiseKernel& k_;
  const ir::Program& p_;
  std::string* err_;
  std::string where_;
  std::vector<int32_t> nodeValue_;  // per node: its value id, once emitted
  std::vector<int32_t> varValue_;   // per var: its tile-local value, once assigned here
  std::vector<int32_t> directOf_;   // per var: its Direct value
  std::vector<int32_t> bound_;      // values that tile-local temporaries hold
  std::vector<std::pair<int32_t, int32_t>> bcastOf_;
};

bool PointwiseKernel::compile(const ir::Program& p, const std::vector<int32_t>& stmts, std::string* error) {
  *this = PointwiseKernel{};
  std::string scratch;
  if (!error) error = &scratch;
  Builder b(*this, p, error);
  for (int32_t si : stmts) {
    if (!b.statement(si)) {
      *this = PointwiseKernel{};
      return false;
    }
  }
  b.fuse();
  b.allocate();
  return true;
}

namespace {

// The per-thread arena: value pointers, uniforms, tile registers. Grows on a thread's first
// call with a bigger kernel; never shrinks.
struct Arena {
  std::unique_ptr<std::byte[]> mem;
  size_t size = 0;
  std::byte* get(size_t bytes) {
    if (bytes + 64 > size) {
      size = std::max(bytes + 64, size * 2);
      mem.reset(new std::byte[size]);
    }
    const auto p = reinterpret_cast<uintptr_t>(mem.get());
    return mem.get() + ((64 - p % 64) % 64);
  }
};

size_t roundUp64(size_t x) { return (x + 63) / 64 * 64; }

}  // namespace

void PointwiseKernel::run(int64_t begin, int64_t end, const Bindings& b) const {
  if (end <= begin || values_.empty()) return;
  thread_local Arena arena;
  const size_t ptrBytes = roundUp64(values_.size() * sizeof(void*));
  const size_t uniBytes = roundUp64(uniformInit_.size() * 8);
  std::byte* mem = arena.get(ptrBytes + uniBytes + static_cast<size_t>(slots_) * pw::kSlotBytes);
  void** ptr = reinterpret_cast<void**>(mem);
  auto* uni = reinterpret_cast<uint64_t*>(mem + ptrBytes);
  std::byte* regs = mem + ptrBytes + uniBytes;

  // Per call: uniforms, value addresses, scalar work and broadcasts.
  if (!uniformInit_.empty()) std::memcpy(uni, uniformInit_.data(), uniformInit_.size() * 8);
  for (const Leaf& l : leaves_) {
    const double v = l.from == Leaf::From::Rank     ? b.rank
                     : l.from == Leaf::From::NRanks ? b.nranks
                                                    : b.scalars[static_cast<size_t>(l.var)];
    pw::scalarToCompute(v, l.dtype, &uni[l.uniform]);
  }
  for (size_t i = 0; i < values_.size(); ++i) {
    const Value& v = values_[i];
    switch (v.kind) {
      case Kind::Reg:
      case Kind::Bcast:
        ptr[i] = regs + static_cast<size_t>(v.index) * pw::kSlotBytes;
        break;
      case Kind::Uniform:
        ptr[i] = &uni[v.index];
        break;
      default:
        ptr[i] = nullptr;
        break;
    }
  }
  for (const Instr& in : pre_) in.fn(ptr[in.out], ptr[in.a], ptr[in.b], ptr[in.c], in.n, 0);

  for (int64_t t = begin; t < end; t += pw::kTile) {
    const int n = static_cast<int>(std::min<int64_t>(pw::kTile, end - t));
    for (const Direct& d : directs_) {
      const TensorBinding tb = static_cast<size_t>(d.var) < b.tensors.size()
                                   ? b.tensors[static_cast<size_t>(d.var)]
                                   : TensorBinding{};
      ptr[d.value] = tb.data ? static_cast<std::byte*>(tb.data) + (t - tb.base) * d.elemBytes : nullptr;
    }
    for (const Instr& in : body_) {
      if (in.optional && !ptr[in.out]) continue;
      in.fn(ptr[in.out], ptr[in.a], ptr[in.b], ptr[in.c], n, t);
    }
  }
}

void PointwiseKernel::runScalars(const Bindings& b, std::vector<double>* scalars) const {
  if (scalarResults_.empty()) return;
  std::vector<uint64_t> uni(uniformInit_);
  std::vector<void*> ptr(values_.size(), nullptr);
  for (const Leaf& l : leaves_) {
    const double v = l.from == Leaf::From::Rank     ? b.rank
                     : l.from == Leaf::From::NRanks ? b.nranks
                                                    : b.scalars[static_cast<size_t>(l.var)];
    pw::scalarToCompute(v, l.dtype, &uni[static_cast<size_t>(l.uniform)]);
  }
  for (size_t i = 0; i < values_.size(); ++i)
    if (values_[i].kind == Kind::Uniform) ptr[i] = &uni[static_cast<size_t>(values_[i].index)];
  for (const Instr& in : pre_)
    if (in.n == 1) in.fn(ptr[in.out], ptr[in.a], ptr[in.b], ptr[in.c], 1, 0);  // skip broadcasts
  for (const ScalarResult& r : scalarResults_) {
    if (scalars->size() <= static_cast<size_t>(r.var)) scalars->resize(static_cast<size_t>(r.var) + 1);
    (*scalars)[static_cast<size_t>(r.var)] =
        pw::computeToDouble(ptr[r.value], values_[static_cast<size_t>(r.value)].ct);
  }
}

bool PointwiseKernel::checkBindings(const Bindings& b, std::string* error) const {
  for (const Direct& d : directs_) {
    if (!d.required) continue;
    if (static_cast<size_t>(d.var) >= b.tensors.size() || !b.tensors[static_cast<size_t>(d.var)].data) {
      *error = "tensor variable " + std::to_string(d.var) + " is not bound";
      return false;
    }
  }
  if (maxScalarVar_ >= 0 && b.scalars.size() <= static_cast<size_t>(maxScalarVar_)) {
    *error = "Bindings::scalars has " + std::to_string(b.scalars.size()) + " entries; variable " +
             std::to_string(maxScalarVar_) + " is read";
    return false;
  }
  return true;
}

}  // namespace fccl::fusion
