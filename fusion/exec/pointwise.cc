// pointwise.cc - PointwiseKernel::compile: translating a lowered pointwise form to tile-VM
// instructions (running them: pointwise_run.cc). The form has decided every type and rounding;
// the translation decides, per value, where it lives: a tile register, a bound tensor read in
// place (f32/f64/i32/i64 need no conversion), or a uniform computed once per call; then merges
// float arithmetic pairs into superinstructions and a linear scan assigns registers so a tile's
// working set stays in L1. Kernels: pointwise_ops.cc, pointwise_convert.cc.
#include "fusion/exec/pointwise.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

namespace fccl::fusion {

using ir::DType;
using lowered::Index;
using lowered::StmtKind;
using lowered::VOp;
using pw::CT;
using pw::storedAsComputed;

class PointwiseKernel::Builder {
 public:
  Builder(PointwiseKernel& k, const lowered::PointwiseForm& f, std::string* err) : k_(k), f_(f), err_(err) {
    vmOf_.assign(f.values.size(), -1);
    k_.values_.push_back(Value{});  // value 0: no operand
  }

  // Values [from, stmt.valuesEnd), then the statement's effect.
  bool statement(const lowered::Stmt& st) {
    for (; next_ < static_cast<size_t>(st.valuesEnd); ++next_)
      if (!value(next_)) return false;
    int32_t v = vm(st.value);
    switch (st.kind) {
      case StmtKind::ScalarResult:
        k_.scalarResults_.push_back({st.var, v});
        return true;
      case StmtKind::Buffer: {
        // Tile-local for later statements. A value read in place from a tensor is copied: a
        // later statement may overwrite that tensor before the temporary is read.
        if (val(v).kind == Kind::Direct) {
          const int32_t r = newValue(Kind::Reg, val(v).ct);
          body(pw::copyKernel(val(v).ct), r, v);
          v = r;
          vmOf_[static_cast<size_t>(st.value)] = v;
        }
        bound_.push_back(v);
        Instr& in =
            body(pw::storeKernel(val(v).ct, st.dtype, isUniform(v)), direct(st.var, st.dtype, false), v);
        in.optional = true;
        return true;
      }
      case StmtKind::Store:
        break;
    }
    // A declared tensor: let the instruction that made the value write it in place when no
    // conversion is needed (saves a pass over the tile), else store with rounding.
    const int32_t out = direct(st.var, st.dtype, true);
    if (storedAsComputed(st.dtype) && val(v).ct == pw::computeType(st.dtype) && val(v).kind == Kind::Reg &&
        !k_.body_.empty() && k_.body_.back().out == v &&
        std::find(bound_.begin(), bound_.end(), v) == bound_.end()) {
      k_.body_.back().out = out;  // operands may be `out` itself: same index, read first
      return true;
    }
    body(pw::storeKernel(val(v).ct, st.dtype, isUniform(v)), out, v);
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
    *err_ = msg;
    return false;
  }
  const Value& val(int32_t v) const { return k_.values_[static_cast<size_t>(v)]; }
  bool isUniform(int32_t v) const { return val(v).kind == Kind::Uniform; }
  int32_t vm(int32_t formValue) const { return vmOf_[static_cast<size_t>(formValue)]; }

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
  // A per-element op on a tile, or the same op once per call when every operand is uniform.
  int32_t op(pw::Kernel fn, bool uniform, CT ct, int32_t a, int32_t b = 0, int32_t c = 0) {
    const int32_t out = newValue(uniform ? Kind::Uniform : Kind::Reg, ct);
    if (uniform)
      pre(fn, out, a, b, c);
    else
      body(fn, out, a, b, c);
    return out;
  }

  // The in-place value of tensor `var` (one per variable).
  int32_t direct(int32_t var, DType dtype, bool required) {
    if (directOf_.size() <= static_cast<size_t>(var)) directOf_.resize(static_cast<size_t>(var) + 1, -1);
    int32_t& d = directOf_[static_cast<size_t>(var)];
    if (d < 0) {
      d = newValue(Kind::Direct, pw::computeType(dtype));
      Direct dd;
      dd.var = var;
      dd.value = d;
      dd.elemBytes = ir::dtypeBytes(dtype);
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

  bool value(size_t id) {
    const lowered::Value& x = f_.values[id];
    int32_t out = -1;
    const int32_t a = x.a[0] >= 0 ? vm(x.a[0]) : 0, b = x.a[1] >= 0 ? vm(x.a[1]) : 0,
                  c = x.a[2] >= 0 ? vm(x.a[2]) : 0;
    switch (x.op) {
      case VOp::Const:
        out = newValue(Kind::Uniform, x.ct);
        pw::scalarToCompute(x.value, pw::ctDType(x.ct),
                            &k_.uniformInit_[static_cast<size_t>(val(out).index)]);
        break;
      case VOp::Scalar:
        if (x.index == Index::NodeSlot) return fail("the tile VM reads no node slots");
        out = leaf(Leaf::From::Scalar, x.var, x.dtype);
        break;
      case VOp::Rank:
        out = leaf(Leaf::From::Rank, -1, DType::I32);
        break;
      case VOp::NRanks:
        out = leaf(Leaf::From::NRanks, -1, DType::I32);
        break;
      case VOp::Load: {
        if (x.var < 0) return fail("the tile VM reads no node slots");
        const int32_t d = direct(x.var, x.dtype, true);
        if (storedAsComputed(x.dtype)) {
          out = d;
        } else {
          out = newValue(Kind::Reg, x.ct);
          body(pw::loadKernel(x.dtype), out, d);
        }
        break;
      }
      case VOp::Cast:
        out = op(pw::castKernel(val(a).ct, x.dtype), x.uniform, x.ct, a);
        break;
      case VOp::Select:
        if (x.uniform)
          out = op(pw::selectKernel(x.ct), true, x.ct, a, b, c);
        else
          out = op(pw::selectKernel(x.ct), false, x.ct, vec(a), vec(b), vec(c));
        break;
      case VOp::Dropout:
        out = op(pw::dropoutKernel(x.ct), false, x.ct, vec(a), b, c);
        break;
      default:
        if (lowered::vopArity(x.op) == 1) {
          out = op(pw::unaryKernel(x.op, val(a).ct), x.uniform, x.ct, a);
        } else {
          const bool ua = isUniform(a), ub = isUniform(b);
          const pw::Form form = ua && !ub ? pw::Form::UV : (!ua && ub ? pw::Form::VU : pw::Form::VV);
          out = op(pw::binaryKernel(x.op, val(a).ct, form), x.uniform, x.ct, a, b);
          if (!x.uniform) {
            Instr& in = k_.body_.back();
            in.arith = (x.ct == CT::F32 || x.ct == CT::F64) &&
                       (x.op == VOp::Add || x.op == VOp::Sub || x.op == VOp::Mul || x.op == VOp::Div);
            in.op = x.op;
            in.form = form;
          }
        }
        break;
    }
    const Instr* last = x.op == VOp::Const || x.op == VOp::Scalar || x.op == VOp::Rank ||
                                x.op == VOp::NRanks || (x.op == VOp::Load && storedAsComputed(x.dtype))
                            ? nullptr
                        : isUniform(out) ? &k_.pre_.back()
                                         : &k_.body_.back();
    if (last && !last->fn)
      return fail(std::string("no tile-VM kernel for ") + lowered::vopName(x.op) + " on " +
                  lowered::ctName(x.ct));
    vmOf_[id] = out;
    return true;
  }

  PointwiseKernel& k_;
  const lowered::PointwiseForm& f_;
  std::string* err_;
  size_t next_ = 0;                // the next form value to translate
  std::vector<int32_t> vmOf_;      // per form value: its VM value
  std::vector<int32_t> directOf_;  // per var: its Direct value
  std::vector<int32_t> bound_;     // values that tile-local temporaries hold
  std::vector<std::pair<int32_t, int32_t>> bcastOf_;
};

bool PointwiseKernel::compile(const lowered::PointwiseForm& f, std::string* error) {
  *this = PointwiseKernel{};
  std::string scratch;
  if (!error) error = &scratch;
  Builder b(*this, f, error);
  for (const lowered::Stmt& st : f.stmts) {
    if (!b.statement(st)) {
      *this = PointwiseKernel{};
      return false;
    }
  }
  b.fuse();
  b.allocate();
  return true;
}

bool PointwiseKernel::compile(const ir::Program& p, const std::vector<int32_t>& stmts, std::string* error) {
  lowered::PointwiseForm f;
  if (!lowered::buildForm(p, stmts, {}, &f, error)) {
    *this = PointwiseKernel{};
    return false;
  }
  return compile(f, error);
}

}  // namespace fccl::fusion
