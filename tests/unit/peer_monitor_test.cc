// peer_monitor_test.cc - a peer its transport reports lost (TransportComm::peerLost, e.g. a
// closed socket) ends a wait on that peer with the transport's reason; a wait on another peer
// goes on. A fake transport stands in for the socket transport.
#include "src/peer_monitor.h"

#include <gtest/gtest.h>

#include <string>

#include "src/base/error.h"
#include "transports/transport.h"

namespace fccl {
namespace {

class LosingTransport : public TransportComm {
 public:
  fcclResult_t setup(ConnectBlob*) override { return fcclSuccess; }
  fcclResult_t connect(const ConnectBlob* const*, Connections*) override { return fcclSuccess; }
  bool peerLost(int peer, std::string* why) const override {
    if (peer != 2) return false;
    *why = "connection closed by peer";
    return true;
  }
};

TEST(PeerMonitor, APeerItsTransportLostEndsTheWait) {
  LosingTransport t;
  TransportComm* links[3] = {nullptr, &t, &t};
  PeerMonitor m;
  m.nranks = 3;
  m.linkOf = links;
  WaitContext w;
  w.rank = 0;
  w.opName = "AllReduce";
  w.opSeq = 9;
  w.what = "data";
  w.spinLimit = 1;
  w.timeoutMs = 60000;
  w.watch = &m;
  w.peer = 2;
  EXPECT_EQ(waitUntil(w, [] { return false; }), fcclRemoteError);
  EXPECT_NE(std::string(lastError())
                .find("AllReduce #9: lost rank 2 while waiting for data: connection closed by peer"),
            std::string::npos)
      << lastError();
  uint32_t cursor = 0;
  w.peer = 1;
  EXPECT_EQ(m.check(w, &cursor), fcclSuccess);
}

}  // namespace
}  // namespace fccl
