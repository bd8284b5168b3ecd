// bootstrap_wire.h - the bootstrap's wire format, shared by the root (bootstrap_root.cc), the
// ranks (bootstrap.cc), the unit tests' hand-made clients and tests/fuzz/fuzz_bootstrap.cc:
// message header, hellos, table entries, magic numbers, caps, the helpers that build them, and
// the parsers (bootstrap_wire.cc) that check every message a peer or the root sends.
//
// Protocol (plain structs in host byte order: every rank runs the same binary):
//   rank -> root   WireHeader{kWireMagic, kMsgHello, 0, sizeof(RootHello)} + RootHello
//   root -> rank   WireHeader{kMsgTable, length = nranks * sizeof(TableEntry)} + the table,
//                  or WireHeader{kMsgError, sizeof(ErrorMsg)} + ErrorMsg, then the root closes
//   rank -> rank   first message on every new connection: WireHeader{kMsgPeerHello} + PeerHello
//                  (kConnRing or kConnP2p); then kMsgGather blocks (tag = allGather sequence
//                  number) on the ring, kMsgP2p messages (tag = the caller's) on p2p connections.
// Invariants: a header's magic, type and length are checked before its payload is read, and a
// fixed-size message must carry exactly its struct's size; nothing is allocated from a length
// read off the wire beyond a fixed cap: the root's table holds at most kMaxRanks entries (a
// rank reads it only when its length is exactly its own nranks entries), a p2p payload at most
// kMaxMessageBytes and only as fast as its bytes arrive, the messages kept for later recv()s at
// most kMaxStashBytes in all, and the root and each rank keep at most kMaxPendingConnections
// unidentified clients (hello_inbox.h). Every hello carries the unique id's secret, compared
// before the hello is acted on. Every field a rank later uses (rank, nranks, timeout, address
// family, NUL-terminated host name) is range-checked by the parser, which writes its output
// only for a valid message.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "fccl.h"
#include "src/base/socket.h"
#include "src/bootstrap.h"

namespace fccl {

// ---- wire format (same binary on every rank: plain structs, host byte order) ----

constexpr uint64_t kWireMagic = 0x6663636c424f4f54ull;   // "fcclBOOT"
constexpr size_t kMaxMessageBytes = size_t(1) << 30;     // cap for p2p payloads from peers
constexpr size_t kMaxStashBytes = size_t(1) << 30;       // cap for unclaimed p2p messages, in all
constexpr size_t kWireReadPiece = size_t(1) << 20;       // a payload's buffer grows by this much
constexpr int64_t kMaxWireTimeoutMs = int64_t(1) << 40;  // a hello's timeout (ns fit in int64)
constexpr int kMaxRanks = 1 << 16;                       // cap for the root's table
constexpr int kMaxPendingConnections = 1024;             // unidentified clients at once, per port
constexpr int64_t kPeerHelloTimeoutMs = 5000;            // a new connection's hello (rank, root)
constexpr int64_t kRootReplyGraceMs = 250;               // rank waits this long past its timeout
                                                         // for the root's "who is missing" reply

enum MsgType : uint32_t {
  kMsgHello = 1,      // rank -> root: RootHello
  kMsgTable = 2,      // root -> rank: nranks x TableEntry
  kMsgError = 3,      // root -> rank: ErrorMsg, then the root closes
  kMsgPeerHello = 4,  // rank -> rank, first message on a new connection: PeerHello
  kMsgGather = 5,     // ring allGather block (tag = the call's sequence number)
  kMsgP2p = 6,        // tagged point-to-point message
};

struct WireHeader {
  uint64_t magic;
  uint32_t type;
  uint32_t tag;
  uint64_t length;  // payload bytes that follow
};

struct RootHello {
  uint8_t secret[32];
  int32_t rank;
  int32_t nranks;
  int64_t timeoutMs;  // the rank gives up after this; the root reports who is missing by then
  SocketAddress listenAddr;
  PeerInfo info;
};

struct TableEntry {
  SocketAddress listenAddr;
  PeerInfo info;
};

struct ErrorMsg {
  int32_t code;  // fcclResult_t
  char text[252];
};

enum PeerConnKind : int32_t {
  kConnRing = 1,
  kConnP2p = 2
};

struct PeerHello {
  uint8_t secret[32];
  int32_t rank;
  int32_t kind;  // PeerConnKind
};

inline WireHeader makeHeader(MsgType type, uint32_t tag, uint64_t length) {
  WireHeader h;
  h.magic = kWireMagic;
  h.type = type;
  h.tag = tag;
  h.length = length;
  return h;
}

// ---- hashing (not cryptographic: the secret only keeps stale or foreign jobs out) ----

inline uint64_t mix64(uint64_t x) {  // splitmix64's finalizer: every input bit reaches every output bit
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline uint64_t hash64(const void* data, size_t n, uint64_t seed) {  // FNV-1a, seeded, then mixed
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t h = 0xcbf29ce484222325ull ^ mix64(seed);
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return mix64(h ^ n);
}

inline bool sameSecret(const uint8_t* a, const uint8_t* b) {
  uint8_t diff = 0;  // constant time, out of habit
  for (int i = 0; i < 32; i++) diff |= a[i] ^ b[i];
  return diff == 0;
}

inline UniqueIdContents idContents(const fcclUniqueId& id) {
  UniqueIdContents c;
  memcpy(&c, id.internal, sizeof(c));
  return c;
}

inline bool validAddress(const SocketAddress& a) {
  return a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6;
}

// ---- parsers (bootstrap_wire.cc): bytes in, a verdict out; no socket, no logging ----

// The verdict on bytes read off the wire: ok, or the code the caller returns and a sentence
// (without the "rank N:" prefix the caller adds). io is set instead when reading failed
// (timeout, abort, closed), which the caller words itself.
struct WireStatus {
  fcclResult_t code = fcclSuccess;
  std::string why;
  IoStatus io;
  bool ok() const { return code == fcclSuccess; }
};

// A header of `type` carrying exactly `length` payload bytes (fcclInternalError otherwise).
WireStatus wireParseHeader(const void* bytes, size_t n, MsgType type, uint64_t length, WireHeader* out);

// The root's view of a client's first frame (WireHeader + RootHello, n bytes). fcclRemoteError:
// not (provably) a rank of this job - bad header, truncated or wrong secret - so the root drops
// it without a reply; fcclInvalidUsage: a rank with the secret sent fields out of range (rank,
// nranks, timeout, listen address, host name), which the root tells it. *out only when ok.
WireStatus wireParseRootHello(const void* frame, size_t n, const uint8_t secret[32], RootHello* out);

// A rank's view of the root's reply payload after a kMsgError header: the code it reports
// (fcclInvalidUsage / fcclInvalidArgument as sent, anything else fcclRemoteError) and the text,
// cut at 251 characters, non-printable ones replaced by '?'. Outputs only when ok.
WireStatus wireParseErrorMsg(const void* bytes, size_t n, fcclResult_t* code, std::string* text);

// The table payload after a kMsgTable header: exactly nranks entries, entry r says rank r, has
// an IPv4/IPv6 address and a NUL-terminated host name (fcclInternalError otherwise). *out is
// assigned only when ok.
WireStatus wireParseTable(const void* bytes, size_t n, int nranks, std::vector<TableEntry>* out);

// The first frame on a rank-to-rank connection (WireHeader + PeerHello, n bytes): the secret,
// a rank in [0, nranks) and a known connection kind (fcclRemoteError otherwise). *out only
// when ok.
WireStatus wireParsePeerHello(const void* frame, size_t n, const uint8_t secret[32], int nranks,
                              PeerHello* out);

// The header of an allGather block from the ring predecessor: a kMsgGather header with the
// expected sequence number and block size. A gather header with another number or size is
// fcclInvalidUsage (the ranks called allGather differently); anything else fcclInternalError.
WireStatus wireParseGatherHeader(const void* bytes, size_t n, uint32_t seq, uint64_t blockBytes);

// A connection's bytes in order: read() returns once all n bytes are in `data`, or why not.
class WireReader {
 public:
  virtual IoStatus read(void* data, size_t n) = 0;

 protected:
  ~WireReader() = default;
};

// A p2p message that arrived before anyone asked for its tag.
struct StashedMessage {
  int peer;
  uint32_t tag;
  std::vector<char> data;
};

// Bootstrap::recv on the connection from `peer`: reads kMsgP2p messages until one has `tag`;
// the others are appended to *stash (their bytes counted in *stashBytes, at most
// kMaxStashBytes). A message with `tag` but not `bytes` bytes is read and dropped:
// fcclInvalidUsage, data untouched. A header that is not a p2p header of at most
// kMaxMessageBytes, or a stash over its cap: fcclInternalError (the stream is lost). Payloads
// are read in pieces of kWireReadPiece, so a claimed length costs memory only as it arrives.
WireStatus wireRecvP2p(WireReader& in, uint32_t tag, void* data, size_t bytes, int peer,
                       std::deque<StashedMessage>* stash, size_t* stashBytes);

}  // namespace fccl
