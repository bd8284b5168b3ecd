// socket_lanes.h - the data path of the socket transport. A SocketLink is everything about one
// peer: the two FIFOs in this rank's memory that the algorithms see (SendConn writes the send
// FIFO, RecvConn reads the receive FIFO), and the sockets that carry them, nsocks each way. A
// Lane is one socket of one direction; the helper threads (SocketHelpers) drive the lanes with
// non-blocking I/O, so a chunk is on the wire while the rank reduces the next one.
//
// Send lane i: for each message (slot) the rank posted, sends its task for socket i (if any),
// header and payload in one sendmsg. The slot goes back to the rank (FIFO head) once every task
// of it is sent, in order. Receive lane i: reads a header, checks it (socket_wire.h), waits
// until the slot is free, copies the payload into place (a small frame arrives whole in one
// recv, as Open MPI's btl tcp reads its fragments; a large payload is read in place); the slot is posted to
// the rank (FIFO tail, with its SlotMeta) once every task of it arrived, in order. A lane that sees its
// connection close or a bad header marks the link lost with a sentence; the rank's waits see it through
// TransportComm::peerLost. Threads: lanes are stepped by their helper thread, or by the rank's thread while
// it waits (SocketHelpers::drive), never both at once (the helper's lock); the link's counters are shared
// between helpers under the link's mutex; the rank otherwise touches only the FIFO counters.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include "transports/fifo.h"
#include "transports/socket/socket_wire.h"

namespace fccl {

class SocketLink {
 public:
  SocketLink(int peer, int nslots, size_t slotBytes);
  ~SocketLink();
  SocketLink(const SocketLink&) = delete;
  SocketLink& operator=(const SocketLink&) = delete;

  const int peer;
  const int nslots;
  const size_t slotBytes;
  std::string name;  // "rank 3 (host b, 10.0.0.2:4567)", for sentences
  FifoCtrl* sendCtrl = nullptr;
  char* sendSlots = nullptr;
  FifoCtrl* recvCtrl = nullptr;
  char* recvSlots = nullptr;
  std::vector<int> sendFds;  // sockets we send on (we connected them)
  std::vector<int> recvFds;  // sockets we receive on (the peer connected them)

  // Send lanes: message seq's metadata, read under the lock that keeps its slot from being
  // reused; false when the message is already complete (it had no task for the asking lane,
  // and its slot may hold a later message by now).
  bool sendMeta(uint64_t seq, SlotMeta* m) const;
  // Send lanes: the task of message seq on one socket is sent.
  void sendTaskDone(uint64_t seq);
  // Receive lanes: a checked header for a free slot; false (and *why) when it contradicts
  // another task of the same message.
  bool recvRegister(const FrameHeader& h, std::string* why);
  void recvTaskDone(uint64_t seq);
  uint64_t recvTail() const { return recvTail_.load(std::memory_order_acquire); }

  void markLost(const std::string& why);
  // A receive lane read its socket's end: once every receive socket has, nothing more can come
  // and the link is lost (data the peer sent before closing is all delivered first).
  void recvLaneClosed(const std::string& why);
  bool lost() const { return lost_.load(std::memory_order_acquire); }
  std::string lostWhy() const;
  // Every posted send slot is on the wire (or the link is lost).
  bool drained() const;

 private:
  struct RecvSlot {
    uint64_t seq = UINT64_MAX;
    uint32_t bytes = 0, tag = 0;
    uint64_t msgBytes = 0;
    int ntasks = 0, got = 0;
  };
  char* memory_ = nullptr;
  mutable std::mutex mu_;
  uint64_t sendHead_ = 0;
  int sendDone_[kMaxFifoSlots] = {};
  std::atomic<uint64_t> recvTail_{0};
  RecvSlot recvSlot_[kMaxFifoSlots];
  std::atomic<bool> lost_{false};
  std::string why_;
  size_t recvClosed_ = 0;
};

struct Lane {
  SocketLink* link = nullptr;
  bool send = false;
  int index = 0;   // socket index within the direction
  int nsocks = 1;  // sockets of the direction
  int fd = -1;
  // send
  uint64_t seq = 0;  // next message to look at
  bool busy = false;
  FrameHeader hdr{};
  const char* payload = nullptr;
  size_t done = 0;
  // receive: bytes are read into rx (headers, small payloads, often several frames in one
  // recv) and large payloads straight into their slot.
  std::unique_ptr<char[]> rx;
  size_t rxBeg = 0, rxEnd = 0;  // rx[rxBeg, rxEnd) is read but not yet used
  bool haveHdr = false;
  char* dst = nullptr;
  size_t payGot = 0;
  uint64_t lastSeq = UINT64_MAX;
  bool eof = false;  // receive: the peer closed this socket (at a frame boundary)

  // Moves as much as the socket takes now. True if anything moved.
  bool step();
  // Work that poll() cannot see: a new slot to send, or a slot freed for a waiting header.
  // wakeWhen: the value of the FIFO counter (send: tail, receive: head) that brings it.
  uint64_t wakeWhen() const;
  const std::atomic<uint64_t>* wakeCounter() const {
    return send ? &link->sendCtrl->tail : &link->recvCtrl->head;
  }
  bool hiddenWork() const;
  // Receive: whether this lane may carry what the rank waits for next (the rest of a frame it
  // began, or the first task of the oldest incomplete message); drive() leaves the others to
  // the helpers' poll(). Send lanes: always.
  bool expected() const;
  short pollEvents() const;  // what to poll() for while the helper sleeps (0: nothing)

 private:
  bool stepSend();
  bool stepRecv();
  // One recv into rx after what it holds. 1: bytes came (*drained: fewer than asked, so the
  // socket is empty for now); 0: nothing to read now; -1: the link failed or closed.
  int fill(bool* drained);
  void fail(const char* what, int err);
};

// The helper threads of one communicator: thread t drives the lanes with index % nthreads == t.
class SocketHelpers {
 public:
  ~SocketHelpers() { stop(); }
  void start(std::vector<Lane>* lanes, int nthreads, int rank);
  void stop();
  // From the progress thread: wake a sleeping helper that has work poll() cannot see.
  bool ring();
  // From the rank's thread while it waits: step the lanes of every helper that is not stepping
  // them now (a helper holds its lock while it steps). True if anything moved.
  bool drive();

 private:
  struct Helper {
    std::vector<Lane*> lanes;
    // While sleeping: per lane, the counter value that brings hidden work (UINT64_MAX: none).
    std::unique_ptr<std::atomic<uint64_t>[]> wakeWhen;
    int wakeFd = -1;
    std::atomic<bool> sleeping{false};
    std::mutex mu;  // held by whoever steps the lanes: the helper, or the waiting rank (drive)
    std::thread thread;
  };
  void loop(Helper* h);
  std::vector<std::unique_ptr<Helper>> helpers_;
  std::atomic<bool> stop_{false};
  int rank_ = -1;
};

}  // namespace fccl
