// program_reduction.cc - see program_reduction.h.
#include "src/program_reduction.h"
#include <cmath>
#include "src/base/half.h"

namespace fccl {

namespace {

template <class T>
inline double toDouble(T x) {
  return double(x);
}
template <>
inline double toDouble<half_t>(half_t x) {
  return toFloat(x);
}
template <>
inline double toDouble<bfloat16_t>(bfloat16_t x) {
  return toFloat(x);
}
template <>
inline double toDouble<uint8_t>(uint8_t x) {  // bool storage
  return x != 0 ? 1.0 : 0.0;
}

// step(acc, x) over x[0, n) in four independent chains, combined at the end.
template <class T, class Step>
double fold(ir::Op op, const T* x, int64_t n, double init, Step step) {
  double a[4] = {init, init, init, init};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) a[k] = step(a[k], toDouble(x[i + k]));
  for (; i < n; ++i) a[0] = step(a[0], toDouble(x[i]));
  return reductionCombine(op, reductionCombine(op, a[0], a[1]), reductionCombine(op, a[2], a[3]));
}

template <class T>
double partialTyped(ir::Op op, const T* x, int64_t n) {
  switch (op) {
    case ir::Op::Norm:
      return fold(op, x, n, 0.0, [](double acc, double v) { return acc + v * v; });
    case ir::Op::Sum:
      return fold(op, x, n, 0.0, [](double acc, double v) { return acc + v; });
    case ir::Op::MaxAll:
      return fold(op, x, n, -INFINITY, [](double acc, double v) { return std::fmax(acc, v); });
    default:  // AnyNonfinite
      return fold(op, x, n, 0.0,
                  [](double acc, double v) { return (acc != 0 || !std::isfinite(v)) ? 1.0 : 0.0; });
  }
}

}  // namespace

double reductionCombine(ir::Op op, double a, double b) {
  switch (op) {
    case ir::Op::MaxAll:
      return std::fmax(a, b);
    case ir::Op::AnyNonfinite:
      return (a != 0 || b != 0) ? 1.0 : 0.0;
    default:
      return a + b;
  }
}

double reductionPartial(ir::Op op, ir::DType type, const void* data, int64_t base, int64_t begin,
                        int64_t end) {
  const int64_t n = end > begin ? end - begin : 0;
  const int64_t at = begin - base;
  switch (type) {
    case ir::DType::F64:
      return partialTyped(op, static_cast<const double*>(data) + at, n);
    case ir::DType::F32:
      return partialTyped(op, static_cast<const float*>(data) + at, n);
    case ir::DType::F16:
      return partialTyped(op, static_cast<const half_t*>(data) + at, n);
    case ir::DType::BF16:
      return partialTyped(op, static_cast<const bfloat16_t*>(data) + at, n);
    case ir::DType::I32:
      return partialTyped(op, static_cast<const int32_t*>(data) + at, n);
    case ir::DType::I64:
      return partialTyped(op, static_cast<const int64_t*>(data) + at, n);
    default:
      return partialTyped(op, static_cast<const uint8_t*>(data) + at, n);
  }
}

}  // namespace fccl
