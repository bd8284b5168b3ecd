// registry.cc - the transports fccl knows, in selection order: for each pair of ranks the core
// takes the first one whose canConnect accepts both. shm connects ranks of one host (equal
// PeerInfo::hostHash, unless FCCL_SHM_DISABLE); socket connects any pair, so it takes the rest:
// ranks on different hosts.
#include "transports/shm/shm_transport.h"
#include "transports/socket/socket_transport.h"
#include "transports/transport.h"

namespace fccl {

const Transport* const kTransports[] = {&kShmTransport, &kSocketTransport};
const int kNumTransports = sizeof(kTransports) / sizeof(kTransports[0]);

}  // namespace fccl
