// ucx_transport.h - the UCX transport (ranks on different hosts, FCCL_NET=ucx or auto with RDMA
// ports: transports/net_choice.h): its registry entry. Built when libucx-dev is found
// (FCCL_HAVE_UCX).
#pragma once
#include "transports/transport.h"

namespace fccl {

extern const Transport kUcxTransport;

}  // namespace fccl
