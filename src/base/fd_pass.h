// fd_pass.h - file descriptors between the processes of one host: SCM_RIGHTS over abstract
// datagram Unix sockets, one per rank, named after the communicator and the rank (as NCCL's
// IPC socket). The CUDA backend sends its cuMem allocations this way (a POSIX file descriptor
// per allocation, src/cuda/vmm.h). A message carries the communicator's hash, which only ranks
// given its unique id know; any other is dropped with its descriptors closed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "fccl.h"

namespace fccl {

constexpr int kMaxPassedFds = 4;

class FdSocket {
 public:
  FdSocket() = default;
  ~FdSocket();
  FdSocket(const FdSocket&) = delete;
  FdSocket& operator=(const FdSocket&) = delete;

  // Binds this rank's name. Every rank that will receive must be open before any peer sends
  // (the caller's next bootstrap exchange is the barrier).
  fcclResult_t open(uint64_t commHash, int rank);
  // nfds descriptors (1 to kMaxPassedFds) and a tag to peerRank's socket.
  fcclResult_t send(int peerRank, uint64_t tag, const int* fds, int nfds);
  // The next message for this communicator: its sender, tag and descriptors (the caller owns
  // them). fcclSystemError naming the wait after timeoutMs.
  fcclResult_t recv(int* fromRank, uint64_t* tag, int* fds, int* nfds, int64_t timeoutMs);
  // The same nfds descriptors to every rank of sendTo, and nfds from every rank of recvFrom
  // (got[i]: recvFrom[i]'s, owned by the caller, -1 where none arrived), sends and receives
  // interleaved: a rank's queue holds about 10 messages (net.unix.max_dgram_qlen), so ranks that
  // all sent before receiving would block on each other from about a dozen peers on.
  fcclResult_t exchange(const std::vector<int>& sendTo, const int* fds, int nfds,
                        const std::vector<int>& recvFrom, std::vector<std::vector<int>>* got,
                        int64_t timeoutMs);
  void close();
  // The abstract socket name of a rank ("fccl-fd-<hash>-<rank>", after a leading NUL).
  static std::string nameOf(uint64_t commHash, int rank);

 private:
  // 1: sent; 0: the peer's queue is full (try again); -1: failed (lastError says why).
  int trySend(int peerRank, uint64_t tag, const int* fds, int nfds);
  // 1: a message of this communicator; 0: none waiting (others' are dropped); -1: failed.
  int tryRecv(int* fromRank, uint64_t* tag, int* fds, int* nfds);
  int fd_ = -1;
  int rank_ = -1;
  uint64_t commHash_ = 0;
};

}  // namespace fccl
