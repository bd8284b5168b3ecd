// registry.cc - the transports fccl knows, in selection order: for each pair of ranks the core
// takes the first one whose canConnect accepts both. shm connects ranks of one host; ranks on
// different hosts need the socket transport, which is not built yet (the core then fails init
// with a sentence naming both hosts).
#include "transports/shm/shm_transport.h"
#include "transports/transport.h"

namespace fccl {

const Transport* const kTransports[] = {&kShmTransport};
const int kNumTransports = sizeof(kTransports) / sizeof(kTransports[0]);

}  // namespace fccl
