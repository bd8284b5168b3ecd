// socket_transport.h - the TCP transport (ranks on different hosts): its registry entry.
#pragma once
#include "transports/transport.h"

namespace fccl {

extern const Transport kSocketTransport;

}  // namespace fccl
