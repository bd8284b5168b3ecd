// pointwise_ops.cc - the tile VM's arithmetic, logic, select and dropout kernels
// (pointwise_ops.h): one template loop per lowered op, stamped out per compute type and operand
// form, and the pickers that map (op, type, form) to them. The semantics live in the functors
// of pointwise_scalar.h; the kernels only loop.
#include "fusion/exec/pointwise_scalar.h"
#include "fusion/ir/dropout.h"

namespace fccl::fusion::pw {

using lowered::VOp;

namespace {

// ---------------------------------------------------------------------------------------------
// Kernels.
template <class F, class T>
FCCL_PW_CLONES void unaryK(void* o, const void* a, const void*, const void*, int n, int64_t) {
  using R = decltype(F::template f<T>(T{}));
  R* out = static_cast<R*>(o);
  const T* x = static_cast<const T*>(a);
  for (int i = 0; i < n; ++i) out[i] = F::template f<T>(x[i]);
}

template <class F, class T, Form form>
FCCL_PW_CLONES void binaryK(void* o, const void* a, const void* b, const void*, int n, int64_t) {
  using R = decltype(F::template f<T>(T{}, T{}));
  R* out = static_cast<R*>(o);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  if constexpr (form == Form::VV) {
    for (int i = 0; i < n; ++i) out[i] = F::template f<T>(x[i], y[i]);
  } else if constexpr (form == Form::VU) {
    const T s = *y;
    for (int i = 0; i < n; ++i) out[i] = F::template f<T>(x[i], s);
  } else {
    const T s = *x;
    for (int i = 0; i < n; ++i) out[i] = F::template f<T>(s, y[i]);
  }
}

template <class F1, class F2, class T, Form form, bool innerLeft, bool otherUni>
FCCL_PW_CLONES void fusedK(void* o, const void* a, const void* b, const void* c, int n, int64_t) {
  T* out = static_cast<T*>(o);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  const T* z = static_cast<const T*>(c);
  const T xs = *x, ys = *y, zs = *z;
  for (int i = 0; i < n; ++i) {
    const T xi = form == Form::UV ? xs : x[i];
    const T yi = form == Form::VU ? ys : y[i];
    const T zi = otherUni ? zs : z[i];
    const T r = F1::template f<T>(xi, yi);
    out[i] = innerLeft ? F2::template f<T>(r, zi) : F2::template f<T>(zi, r);
  }
}

template <class T>
FCCL_PW_CLONES void selectK(void* o, const void* c, const void* a, const void* b, int n, int64_t) {
  T* out = static_cast<T*>(o);
  const uint8_t* k = static_cast<const uint8_t*>(c);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  for (int i = 0; i < n; ++i) out[i] = k[i] ? x[i] : y[i];
}

template <class T>
FCCL_PW_CLONES void dropoutK(void* o, const void* a, const void* pp, const void* sp, int n, int64_t first) {
  T* out = static_cast<T*>(o);
  const T* x = static_cast<const T*>(a);
  // dropout.h's rule: keep when the hash's top 24 bits >= floor(p * 2^24); x / (1 - p) in
  // double as the reference does (so an f32 result is bitwise the reference's); p >= 1 makes the
  // threshold 2^24, which no 24-bit value reaches, so every element drops.
  const double p = *static_cast<const double*>(pp);
  const auto seed = static_cast<unsigned long long>(*static_cast<const int64_t*>(sp));
  const unsigned threshold = ir::dropoutThreshold(p);
  const double denom = 1 - p;
  for (int i = 0; i < n; ++i) {
    const bool keep = ir::dropoutKeep(seed, static_cast<unsigned long long>(first + i), threshold);
    out[i] = static_cast<T>(keep ? static_cast<double>(x[i]) / denom : 0.0);
  }
}

Kernel sqrtKernel(CT t, bool recip) {
#if FCCL_PW_X86
  return sqrtKernelX86(t, recip);
#else
  if (t == CT::F32) return recip ? &unaryK<FRsqrt, float> : &unaryK<FSqrt, float>;
  return recip ? &unaryK<FRsqrt, double> : &unaryK<FSqrt, double>;
#endif
}

template <class F, class T>
Kernel binaryForms(Form f) {
  switch (f) {
    case Form::VV:
      return &binaryK<F, T, Form::VV>;
    case Form::VU:
      return &binaryK<F, T, Form::VU>;
    case Form::UV:
      return &binaryK<F, T, Form::UV>;
  }
  return nullptr;
}

template <class F1, class F2, class T>
Kernel fusedForms(Form f, bool innerLeft, bool otherUni) {
  auto pick = [&](auto form) -> Kernel {
    constexpr Form F = decltype(form)::value;
    if (innerLeft) return otherUni ? &fusedK<F1, F2, T, F, true, true> : &fusedK<F1, F2, T, F, true, false>;
    return otherUni ? &fusedK<F1, F2, T, F, false, true> : &fusedK<F1, F2, T, F, false, false>;
  };
  switch (f) {
    case Form::VV:
      return pick(std::integral_constant<Form, Form::VV>{});
    case Form::VU:
      return pick(std::integral_constant<Form, Form::VU>{});
    case Form::UV:
      return pick(std::integral_constant<Form, Form::UV>{});
  }
  return nullptr;
}

template <class Fn>
Kernel byArith(VOp op, Fn&& fn) {
  switch (op) {
    case VOp::Add:
      return fn(FAdd{});
    case VOp::Sub:
      return fn(FSub{});
    case VOp::Mul:
      return fn(FMul{});
    case VOp::Div:
      return fn(FDiv{});
    default:
      return nullptr;
  }
}

}  // namespace

Kernel fusedKernel(VOp inner, VOp outer, CT t, Form innerForm, bool innerLeft, bool otherUniform) {
  if (t != CT::F32 && t != CT::F64) return nullptr;
  return byArith(inner, [&](auto f1) {
    return byArith(outer, [&](auto f2) {
      using F1 = decltype(f1);
      using F2 = decltype(f2);
      return t == CT::F32 ? fusedForms<F1, F2, float>(innerForm, innerLeft, otherUniform)
                          : fusedForms<F1, F2, double>(innerForm, innerLeft, otherUniform);
    });
  });
}

Kernel unaryKernel(VOp op, CT t) {
  if ((op == VOp::Sqrt || op == VOp::Rsqrt) && (t == CT::F32 || t == CT::F64))
    return sqrtKernel(t, op == VOp::Rsqrt);
  return byType(t, [op](auto v) -> Kernel {
    using T = decltype(v);
    if constexpr (kBool<T>) {
      return op == VOp::Not ? &unaryK<FNot, T> : nullptr;
    } else {
      switch (op) {
        case VOp::Neg:
          return &unaryK<FNeg, T>;
        case VOp::Abs:
          return &unaryK<FAbs, T>;
        default:
          break;
      }
      if constexpr (kFloat<T>) {
        switch (op) {
          case VOp::Exp:
            return &unaryK<FExp, T>;
          case VOp::Log:
            return &unaryK<FLog, T>;
          case VOp::IsFinite:
            return &unaryK<FIsFinite, T>;
          default:
            break;
        }
      }
      return nullptr;
    }
  });
}

Kernel binaryKernel(VOp op, CT t, Form f) {
  return byType(t, [op, f](auto v) -> Kernel {
    using T = decltype(v);
    switch (op) {
      case VOp::Eq:
        return binaryForms<FEq, T>(f);
      case VOp::Ne:
        return binaryForms<FNe, T>(f);
      default:
        break;
    }
    if constexpr (kBool<T>) {
      switch (op) {
        case VOp::And:
          return binaryForms<FAnd, T>(f);
        case VOp::Or:
          return binaryForms<FOr, T>(f);
        default:
          return nullptr;
      }
    } else {
      switch (op) {
        case VOp::Add:
          return binaryForms<FAdd, T>(f);
        case VOp::Sub:
          return binaryForms<FSub, T>(f);
        case VOp::Mul:
          return binaryForms<FMul, T>(f);
        case VOp::Div:
          return binaryForms<FDiv, T>(f);
        case VOp::Pow:
          return binaryForms<FPow, T>(f);
        case VOp::Min:
          return binaryForms<FMin, T>(f);
        case VOp::Max:
          return binaryForms<FMax, T>(f);
        case VOp::Lt:
          return binaryForms<FLt, T>(f);
        case VOp::Le:
          return binaryForms<FLe, T>(f);
        case VOp::Gt:
          return binaryForms<FGt, T>(f);
        case VOp::Ge:
          return binaryForms<FGe, T>(f);
        default:
          return nullptr;
      }
    }
  });
}

Kernel selectKernel(CT t) {
  return byType(t, [](auto v) -> Kernel { return &selectK<decltype(v)>; });
}

Kernel dropoutKernel(CT t) {
  if (t == CT::F32) return &dropoutK<float>;
  if (t == CT::F64) return &dropoutK<double>;
  return nullptr;
}

}  // namespace fccl::fusion::pw
