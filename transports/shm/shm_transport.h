// shm_transport.h - the shared-memory transport (ranks of one host): its registry entry.
#pragma once
#include "transports/transport.h"

namespace fccl {

extern const Transport kShmTransport;

}  // namespace fccl
