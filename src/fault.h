// fault.h - FCCL_FAULT_INJECT: faults on purpose, for the tests that prove every fault ends in a
// clear error (never a hang, never a wrong result). A comma list of kind:rank:op[:ms]; `op` is
// the collective's sequence number on the communicator (1 = its first collective, counting the
// ones fused programs issue), `rank` the rank in that communicator:
//   kill:R:K      rank R's process dies (SIGKILL) as collective K starts
//   kill:R:K:MS   ... MS milliseconds after collective K started (mid-transfer when it is big)
//   delay:R:K:MS  rank R sleeps MS milliseconds before collective K
//   close:R:K     rank R closes its connections at collective K: its call fails with
//                 fcclRemoteError and its peers' calls fail naming it
// With ranks as threads of one process, kill ends the whole process. A malformed value fails
// communicator creation with a sentence naming the entry.
#pragma once
#include <cstdint>
#include "fccl.h"

struct fcclComm;

namespace fccl {

// fcclInvalidArgument if FCCL_FAULT_INJECT does not parse (at init); *armed: it names faults.
fcclResult_t faultSpecCheck(bool* armed);
// Called as collective `seq` starts on a comm whose faultsArmed is set: fcclSuccess unless a
// close fault fires.
fcclResult_t faultPoint(fcclComm* comm, uint64_t seq, const char* opName);

}  // namespace fccl
