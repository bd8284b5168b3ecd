// registry.cc - the transports fccl knows, in selection order: for each pair of ranks the core
// takes the first one whose canConnect accepts both. shm connects ranks of one host (equal
// PeerInfo::hostHash, unless FCCL_SHM_DISABLE); ucx (when built) ranks on different hosts under
// FCCL_NET=ucx, or auto where both hosts have RDMA ports (net_choice.h); socket connects any
// pair, so it takes the rest.
#include "transports/shm/shm_transport.h"
#include "transports/socket/socket_transport.h"
#include "transports/transport.h"
#ifdef FCCL_HAVE_UCX
#include "transports/ucx/ucx_transport.h"
#endif

namespace fccl {

const Transport* const kTransports[] = {&kShmTransport,
#ifdef FCCL_HAVE_UCX
                                        &kUcxTransport,
#endif
                                        &kSocketTransport};
const int kNumTransports = sizeof(kTransports) / sizeof(kTransports[0]);

}  // namespace fccl
