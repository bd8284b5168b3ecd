// pointwise_convert.cc - the tile VM's conversion kernels (pointwise_ops.h): casts, loads from
// and stores to every storage type (f16/bf16 through half.h, with the rounding of
// pointwise_scalar.h), copies and fills, and a scalar's conversion to and from its compute form.
#include <cstring>

#include "fusion/exec/pointwise_scalar.h"

namespace fccl::fusion::pw {

namespace {

template <class S, DType D>
FCCL_PW_CLONES void castK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  Cm<D>* out = static_cast<Cm<D>*>(o);
  const S* x = static_cast<const S*>(a);
  for (int i = 0; i < n; ++i) out[i] = fromStorage<D>(toStorage<D>(x[i]));
}

template <DType D>
FCCL_PW_CLONES void loadK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  Cm<D>* out = static_cast<Cm<D>*>(o);
  const St<D>* x = static_cast<const St<D>*>(a);
  for (int i = 0; i < n; ++i) out[i] = fromStorage<D>(x[i]);
}

template <class S, DType D, bool Uni>
FCCL_PW_CLONES void storeK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  St<D>* out = static_cast<St<D>*>(o);
  const S* x = static_cast<const S*>(a);
  if constexpr (Uni) {
    const St<D> s = toStorage<D>(*x);
    for (int i = 0; i < n; ++i) out[i] = s;
  } else {
    for (int i = 0; i < n; ++i) out[i] = toStorage<D>(x[i]);
  }
}

template <class T>
void copyK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  std::memcpy(o, a, sizeof(T) * static_cast<size_t>(n));
}

template <class T>
FCCL_PW_CLONES void fillK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  T* out = static_cast<T*>(o);
  const T s = *static_cast<const T*>(a);
  for (int i = 0; i < n; ++i) out[i] = s;
}

}  // namespace

Kernel castKernel(CT from, DType to) {
  return byType(from, [to](auto v) -> Kernel {
    using S = decltype(v);
    return byDType(to, [](auto d) -> Kernel { return &castK<S, decltype(d)::value>; });
  });
}

Kernel loadKernel(DType stored) {
  return byDType(stored, [](auto d) -> Kernel { return &loadK<decltype(d)::value>; });
}

Kernel storeKernel(CT from, DType stored, bool uniformSource) {
  return byType(from, [stored, uniformSource](auto v) -> Kernel {
    using S = decltype(v);
    return byDType(stored, [uniformSource](auto d) -> Kernel {
      if (uniformSource) return &storeK<S, decltype(d)::value, true>;
      return &storeK<S, decltype(d)::value, false>;
    });
  });
}

Kernel copyKernel(CT t) {
  return byType(t, [](auto v) -> Kernel { return &copyK<decltype(v)>; });
}

Kernel fillKernel(CT t) {
  return byType(t, [](auto v) -> Kernel { return &fillK<decltype(v)>; });
}

void scalarToCompute(double v, DType t, void* out) {
  byDType(t, [v, out](auto d) -> Kernel {
    constexpr DType D = decltype(d)::value;
    const Cm<D> c = fromStorage<D>(toStorage<D>(v));
    std::memcpy(out, &c, sizeof(c));
    return nullptr;
  });
}

double computeToDouble(const void* in, CT t) {
  switch (t) {
    case CT::F64: {
      double x;
      std::memcpy(&x, in, 8);
      return x;
    }
    case CT::F32: {
      float x;
      std::memcpy(&x, in, 4);
      return x;
    }
    case CT::I32: {
      int32_t x;
      std::memcpy(&x, in, 4);
      return x;
    }
    case CT::I64: {
      int64_t x;
      std::memcpy(&x, in, 8);
      return static_cast<double>(x);
    }
    case CT::B8: {
      uint8_t x;
      std::memcpy(&x, in, 1);
      return x;
    }
  }
  return 0;
}

}  // namespace fccl::fusion::pw
