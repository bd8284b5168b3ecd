// pointwise_run.cc - PointwiseKernel at run time (pointwise.h): per call, the uniforms, value
// addresses, scalar work and broadcasts; then each tile's bound-tensor pointers and the
// instructions compile() made (pointwise.cc). Allocates only on a thread's first (or first
// bigger) call: a thread_local arena holds pointers, uniforms and tile registers.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

#include "fusion/exec/pointwise.h"

namespace fccl::fusion {

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
