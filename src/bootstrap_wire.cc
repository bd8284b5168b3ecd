// bootstrap_wire.cc - the parsers of bootstrap_wire.h: every check of a message the root or a
// peer sends, as pure functions over bytes, so the socket code (bootstrap.cc,
// bootstrap_root.cc) and the fuzz target (tests/fuzz/fuzz_bootstrap.cc) run the same checks.
// Nothing here logs, sets the last error or allocates from a length read off the wire.
#include "src/bootstrap_wire.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace fccl {

namespace {

WireStatus failWith(fcclResult_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
WireStatus failWith(fcclResult_t code, const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  WireStatus s;
  s.code = code;
  s.why = buf;
  return s;
}

WireStatus ioFailed(IoStatus io) {
  WireStatus s;
  s.code = io.kind == IoStatus::kError || io.kind == IoStatus::kAborted ? fcclSystemError : fcclRemoteError;
  s.io = io;
  return s;
}

const char* typeName(uint32_t type) {
  switch (type) {
    case kMsgHello:
      return "hello";
    case kMsgTable:
      return "table";
    case kMsgError:
      return "error";
    case kMsgPeerHello:
      return "peer hello";
    case kMsgGather:
      return "allGather block";
    case kMsgP2p:
      return "p2p message";
  }
  return "unknown";
}

// A host name field from the wire ends inside its array.
bool terminated(const char* s, size_t cap) { return memchr(s, '\0', cap) != nullptr; }

WireStatus checkPeerInfo(const PeerInfo& info, const SocketAddress& addr, const char* who) {
  if (!validAddress(addr))
    return failWith(fcclInternalError, "%s has a listen address of unknown family %d", who,
                    int(addr.sa.sa_family));
  if (!terminated(info.hostname, sizeof(info.hostname)))
    return failWith(fcclInternalError, "%s has a host name without its terminating NUL", who);
  return {};
}

}  // namespace

WireStatus wireParseHeader(const void* bytes, size_t n, MsgType type, uint64_t length, WireHeader* out) {
  WireHeader h;
  if (n != sizeof(h))
    return failWith(fcclInternalError, "truncated message header (%zu of %zu bytes)", n, sizeof(h));
  memcpy(&h, bytes, sizeof(h));
  if (h.magic != kWireMagic) return failWith(fcclInternalError, "not an fccl bootstrap message (bad magic)");
  if (h.type != type || h.length != length)
    return failWith(fcclInternalError,
                    "bad %s header: type %u (%s), length %llu (expected type %u, length %llu)",
                    typeName(type), h.type, typeName(h.type), (unsigned long long)h.length, unsigned(type),
                    (unsigned long long)length);
  if (out) *out = h;
  return {};
}

WireStatus wireParseRootHello(const void* frame, size_t n, const uint8_t secret[32], RootHello* out) {
  const size_t want = sizeof(WireHeader) + sizeof(RootHello);
  if (n != want) return failWith(fcclRemoteError, "truncated hello (%zu of %zu bytes)", n, want);
  WireStatus s = wireParseHeader(frame, sizeof(WireHeader), kMsgHello, sizeof(RootHello), nullptr);
  if (!s.ok()) return s.code = fcclRemoteError, s;
  RootHello h;
  memcpy(&h, static_cast<const char*>(frame) + sizeof(WireHeader), sizeof(h));
  if (!sameSecret(h.secret, secret)) return failWith(fcclRemoteError, "wrong secret");
  // From here on the sender holds the secret: a rank of this job that deserves a sentence.
  if (h.nranks < 1 || h.nranks > kMaxRanks)
    return failWith(fcclInvalidUsage, "rank %d says nranks=%d, outside [1, %d]", h.rank, h.nranks, kMaxRanks);
  if (h.rank < 0 || h.rank >= h.nranks)
    return failWith(fcclInvalidUsage, "rank %d is out of range for nranks=%d", h.rank, h.nranks);
  if (h.timeoutMs < 0 || h.timeoutMs > kMaxWireTimeoutMs)
    return failWith(fcclInvalidUsage, "rank %d sent a timeout of %lld ms, outside [0, %lld]", h.rank,
                    (long long)h.timeoutMs, (long long)kMaxWireTimeoutMs);
  char who[32];
  snprintf(who, sizeof(who), "rank %d's hello", h.rank);
  s = checkPeerInfo(h.info, h.listenAddr, who);
  if (!s.ok()) return s.code = fcclInvalidUsage, s;
  *out = h;
  return {};
}

WireStatus wireParseErrorMsg(const void* bytes, size_t n, fcclResult_t* code, std::string* text) {
  ErrorMsg msg;
  if (n != sizeof(msg))
    return failWith(fcclInternalError, "truncated error message (%zu of %zu bytes)", n, sizeof(msg));
  memcpy(&msg, bytes, sizeof(msg));
  msg.text[sizeof(msg.text) - 1] = '\0';
  for (char* p = msg.text; *p; p++)
    if (*p < 32 || *p > 126) *p = '?';
  // Only the codes a rank can act on pass through; the rest says "the root (or a peer) failed".
  *code = msg.code == fcclInvalidUsage || msg.code == fcclInvalidArgument ? fcclResult_t(msg.code)
                                                                          : fcclRemoteError;
  *text = msg.text;
  return {};
}

WireStatus wireParseTable(const void* bytes, size_t n, int nranks, std::vector<TableEntry>* out) {
  if (nranks < 1 || n != size_t(nranks) * sizeof(TableEntry))
    return failWith(fcclInternalError, "table of %zu bytes for %d ranks (expected %zu)", n, nranks,
                    nranks < 1 ? size_t(0) : size_t(nranks) * sizeof(TableEntry));
  std::vector<TableEntry> t(static_cast<size_t>(nranks));
  memcpy(t.data(), bytes, n);
  for (int r = 0; r < nranks; r++) {
    if (t[size_t(r)].info.rank != r)
      return failWith(fcclInternalError, "table entry %d says rank %d", r, t[size_t(r)].info.rank);
    char who[32];
    snprintf(who, sizeof(who), "table entry %d", r);
    WireStatus s = checkPeerInfo(t[size_t(r)].info, t[size_t(r)].listenAddr, who);
    if (!s.ok()) return s;
  }
  out->swap(t);
  return {};
}

WireStatus wireParsePeerHello(const void* frame, size_t n, const uint8_t secret[32], int nranks,
                              PeerHello* out) {
  const size_t want = sizeof(WireHeader) + sizeof(PeerHello);
  if (n != want) return failWith(fcclRemoteError, "truncated peer hello (%zu of %zu bytes)", n, want);
  WireStatus s = wireParseHeader(frame, sizeof(WireHeader), kMsgPeerHello, sizeof(PeerHello), nullptr);
  if (!s.ok()) return s.code = fcclRemoteError, s;
  PeerHello h;
  memcpy(&h, static_cast<const char*>(frame) + sizeof(WireHeader), sizeof(h));
  if (!sameSecret(h.secret, secret)) return failWith(fcclRemoteError, "wrong secret");
  if (h.rank < 0 || h.rank >= nranks)
    return failWith(fcclRemoteError, "peer hello from rank %d, out of range [0, %d)", h.rank, nranks);
  if (h.kind != kConnRing && h.kind != kConnP2p)
    return failWith(fcclRemoteError, "peer hello from rank %d with unknown connection kind %d", h.rank,
                    h.kind);
  *out = h;
  return {};
}

WireStatus wireParseGatherHeader(const void* bytes, size_t n, uint32_t seq, uint64_t blockBytes) {
  WireHeader h;
  if (n != sizeof(h))
    return failWith(fcclInternalError, "truncated allGather header (%zu of %zu bytes)", n, sizeof(h));
  memcpy(&h, bytes, sizeof(h));
  if (h.magic != kWireMagic || h.type != kMsgGather)
    return failWith(fcclInternalError, "sent a %s (type %u) where allGather #%u was expected",
                    h.magic != kWireMagic ? "message with a bad magic" : typeName(h.type), h.type, seq);
  if (h.tag != seq || h.length != blockBytes)
    return failWith(fcclInvalidUsage,
                    "sent allGather #%u of %llu bytes per rank, this rank expected #%u of %llu bytes", h.tag,
                    (unsigned long long)h.length, seq, (unsigned long long)blockBytes);
  return {};
}

WireStatus wireRecvP2p(WireReader& in, uint32_t tag, void* data, size_t bytes, int peer,
                       std::deque<StashedMessage>* stash, size_t* stashBytes) {
  for (;;) {
    WireHeader h;
    IoStatus io = in.read(&h, sizeof(h));
    if (!io.ok()) return ioFailed(io);
    if (h.magic != kWireMagic || h.type != kMsgP2p || h.length > kMaxMessageBytes)
      return failWith(fcclInternalError,
                      "lost sync (bad message header: %s, type %u, length %llu; at most %zu bytes)",
                      h.magic != kWireMagic ? "bad magic" : "magic ok", h.type, (unsigned long long)h.length,
                      kMaxMessageBytes);
    if (h.tag == tag && h.length == bytes) {
      io = in.read(data, bytes);
      return io.ok() ? WireStatus{} : ioFailed(io);
    }
    if (h.tag != tag && *stashBytes + h.length > kMaxStashBytes)
      return failWith(fcclInternalError,
                      "lost sync (a %llu-byte message with tag %u would put the unclaimed messages over "
                      "%zu bytes)",
                      (unsigned long long)h.length, h.tag, kMaxStashBytes);
    // Another tag (or a size mismatch, reported below): read it whole to keep the stream in sync,
    // growing the buffer only as the bytes arrive.
    std::vector<char> payload;
    for (size_t done = 0; done < h.length;) {
      const size_t piece = std::min(size_t(h.length) - done, kWireReadPiece);
      payload.resize(done + piece);
      io = in.read(payload.data() + done, piece);
      if (!io.ok()) return ioFailed(io);
      done += piece;
    }
    if (h.tag == tag)
      return failWith(fcclInvalidUsage, "message has %llu bytes, expected %zu", (unsigned long long)h.length,
                      bytes);
    *stashBytes += payload.size();
    stash->push_back({peer, h.tag, std::move(payload)});
  }
}

}  // namespace fccl
