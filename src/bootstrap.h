// bootstrap.h - how ranks find each other before any transport exists.
//
// fcclGetUniqueId starts a root (a thread of the calling process) listening on a TCP
// address and returns {magic, root address, random 32-byte secret}. Each rank opens a
// listening socket of its own, connects to the root, proves the secret (an HMAC-free
// challenge is enough here: the secret travels only inside the unique id) and sends
// {rank, nranks, its listen address}. The root checks that all ranks agree on nranks and
// that each rank joins once, then sends every rank the table of listen addresses, and
// exits. Ranks then connect in a ring (rank r -> r+1) and use it for allGather/barrier.
// Every message has a fixed header {magic, type, length} checked before anything is
// allocated; every blocking socket call is bounded by the timeout and the abort flag.
#pragma once
#include <sys/socket.h>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include "fccl.h"
#include "src/base/peer_info.h"
#include "src/base/socket.h"

namespace fccl {

// The unique id's layout (fits in FCCL_UNIQUE_ID_BYTES).
struct UniqueIdContents {
  uint64_t magic;      // kUniqueIdMagic; anything else is a corrupted id
  SocketAddress addr;  // the root's address (IPv4 or IPv6; sockaddr_storage is too big)
  uint8_t secret[32];  // random; proves that a connecting rank was given this id
  uint32_t flags;      // kIdFixedRoot: rank 0's init starts the root (the id came from an address)
};
constexpr uint32_t kIdFixedRoot = 1;
static_assert(sizeof(UniqueIdContents) <= FCCL_UNIQUE_ID_BYTES, "unique id too large");
constexpr uint64_t kUniqueIdMagic = 0x6663636c49443031ull;  // "fcclID01"

// Fills *id and starts the root thread (detached; it exits when nranks have joined, or on
// the timeout). Honors FCCL_COMM_ID / FCCL_SOCKET_IFNAME / FCCL_SOCKET_FAMILY.
fcclResult_t bootstrapGetUniqueId(fcclUniqueId* id);
// For FCCL_COMM_ID: the id every rank derives from the env (secret from FCCL_COMM_SECRET or
// a fixed default), and the root that rank 0 starts at that address.
fcclResult_t bootstrapIdFromEnv(fcclUniqueId* id);
// The same for any host:port (the launchers' root, src/launch.h).
fcclResult_t bootstrapIdFromAddress(const std::string& hostPort, fcclUniqueId* id);
fcclResult_t bootstrapStartRoot(const fcclUniqueId& id);

class Bootstrap {
 public:
  // Joins the communicator described by id. Fails with fcclInvalidArgument for a corrupted
  // id or bad rank/nranks, fcclInvalidUsage when ranks disagree on nranks or a rank joins
  // twice, fcclSystemError/fcclRemoteError (with a sentence naming the rank) otherwise.
  static fcclResult_t create(const fcclUniqueId& id, int rank, int nranks, int64_t timeoutMs,
                             const std::atomic<int>* abortFlag, std::unique_ptr<Bootstrap>* out);
  ~Bootstrap();

  int rank() const { return rank_; }
  int nranks() const { return nranks_; }
  // What rank r announced at init (host hash, pid, ...); valid for 0 <= r < nranks().
  const PeerInfo& peer(int r) const;
  // Where this rank's bootstrap listens (the interface chosen as socket.h says) and its name:
  // network transports listen on the same interface.
  const SocketAddress& listenAddress() const;
  const std::string& interfaceName() const;
  // The unique id's 32-byte secret: network transports make every data connection prove it.
  const uint8_t* secret() const;

  // data holds nranks blocks of `bytes`; block rank() is this rank's contribution; on
  // return every block is filled. Every rank must call with the same bytes.
  fcclResult_t allGather(void* data, size_t bytes);
  fcclResult_t barrier();
  // Tagged point-to-point messages between any two ranks (connections made on demand).
  fcclResult_t send(int peer, uint32_t tag, const void* data, size_t bytes);
  fcclResult_t recv(int peer, uint32_t tag, void* data, size_t bytes);
  // Unblocks any call in progress (fcclCommAbort): it returns an error promptly.
  void abort();

  struct Impl;

 private:
  Bootstrap() = default;
  int rank_ = 0;
  int nranks_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fccl
