// transport_setup.h - connects a communicator's ranks (step 2 of init, after the bootstrap):
// picks a transport for every peer (the first of transports/registry.cc whose canConnect
// accepts both ranks), runs each chosen transport's lifecycle (transports/transport.h), fills
// comm->conns, the call boards and the direct views, and starts the progress thread when a
// transport needs one. Logs the transport of every peer at INFO.
#pragma once
#include "fccl.h"

struct fcclComm;

namespace fccl {

fcclResult_t connectTransports(fcclComm* comm);
// Before the communicator is freed: stops the progress thread, then lets every transport finish
// what the rank posted (not after an abort) and stop its helpers (TransportComm::close).
void closeTransports(fcclComm* comm, bool aborted);

}  // namespace fccl
