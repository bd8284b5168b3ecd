// ready_api.cc - the exported fcclReady* calls over collectives/ready.h.
#include <new>
#include "collectives/ready.h"
#include "src/base/error.h"

using namespace fccl;

extern "C" {

FCCL_API fcclResult_t fcclReadyCreate(fcclReady_t* ready, size_t count) {
  if (ready == nullptr) return setError(fcclInvalidArgument, "fcclReadyCreate: ready is NULL");
  *ready = new (std::nothrow) fcclReady(count);
  if (*ready == nullptr) return setError(fcclSystemError, "fcclReadyCreate: out of memory");
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclReadyMark(fcclReady_t ready, size_t begin, size_t end) {
  if (ready == nullptr) return setError(fcclInvalidArgument, "fcclReadyMark: ready is NULL");
  if (begin > end || end > ready->count)
    return setError(fcclInvalidArgument, "fcclReadyMark: range [%zu, %zu) is not within [0, %zu)", begin, end,
                    ready->count);
  try {
    ready->mark(begin, end);
  } catch (const std::bad_alloc&) {
    return setError(fcclSystemError, "fcclReadyMark: out of memory");
  }
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclReadyReset(fcclReady_t ready) {
  if (ready == nullptr) return setError(fcclInvalidArgument, "fcclReadyReset: ready is NULL");
  ready->reset();
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclReadyDestroy(fcclReady_t ready) {
  delete ready;
  return fcclSuccess;
}

}  // extern "C"
