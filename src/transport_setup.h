// transport_setup.h - connects a communicator's ranks (step 2 of init, after the bootstrap):
// picks a transport for every peer (the first of transports/registry.cc whose canConnect
// accepts both ranks), runs each chosen transport's lifecycle (transports/transport.h), fills
// comm->conns, the call boards and the direct views, and starts the progress thread when a
// transport needs one. Logs the transport of every peer at INFO.
#pragma once
#include <vector>
#include "fccl.h"
#include "src/base/wait.h"
#include "transports/transport.h"

struct fcclComm;

namespace fccl {

fcclResult_t connectTransports(fcclComm* comm);

// The waits' driver (src/base/wait.h): the transports with helper threads, which the waiting
// rank may drive itself (TransportComm::drive). Empty: no wait drives anything.
struct TransportDriver final : WaitDriver {
  std::vector<TransportComm*> transports;
  bool drive() const override {
    bool moved = false;
    for (TransportComm* t : transports) moved |= t->drive();
    return moved;
  }
  // At the end of each call (src/executor.cc): TransportComm::kick.
  void kick() const {
    for (TransportComm* t : transports) t->kick();
  }
};
// Before the communicator is freed: stops the progress thread, then lets every transport finish
// what the rank posted (not after an abort) and stop its helpers (TransportComm::close).
void closeTransports(fcclComm* comm, bool aborted);

}  // namespace fccl
