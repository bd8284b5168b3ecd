// fuzz_bootstrap.cc - libFuzzer target over everything a rank or the bootstrap root parses
// from a socket (src/bootstrap_wire.h): the root's hello, a rank-to-rank hello, the root's reply
// (error message or table), an allGather block header and a stream of tagged p2p messages. The
// first input byte picks the message, the next four are parameters (nranks, tags, sizes), the
// rest are the bytes on the wire. Invariants checked on top of the sanitizers: a rejected
// message carries a sentence and leaves the parser's outputs untouched; an accepted one has
// every field in range; a p2p receive delivers exactly the payload of the message it matched
// and keeps the stash's byte count; nothing allocates more than the bytes that arrived (run
// with -malloc_limit_mb, see scripts/fuzz.sh). `--write-seeds=DIR` writes one valid input per
// message kind, each checked to be accepted, and exits.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_main.h"

#include "src/bootstrap_wire.h"

using namespace fccl;

namespace {

enum Mode : uint8_t {
  kRootHello,
  kPeerHello,
  kRootReply,
  kGatherHeader,
  kP2pStream,
  kModes
};
constexpr size_t kParamBytes = 5;  // mode + four parameters

#define FUZZ_ASSERT(cond)                                                                          \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "fuzz_bootstrap: %s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

// A secret only the seeds know: sameSecret compares in constant time, so the fuzzer cannot
// learn it byte by byte and most mutations exercise the "wrong secret" path.
void testSecret(uint8_t out[32]) {
  for (int i = 0; i < 32; i++) out[i] = uint8_t(i * 37 + 11);
}

// A rejection is a code and a sentence.
void checkRejected(const WireStatus& s) {
  FUZZ_ASSERT(!s.ok());
  FUZZ_ASSERT(!s.why.empty() || !s.io.ok());
}

bool terminated(const char* s, size_t cap) { return memchr(s, '\0', cap) != nullptr; }

void checkPeerInfo(const PeerInfo& info, const SocketAddress& addr) {
  FUZZ_ASSERT(validAddress(addr));
  FUZZ_ASSERT(terminated(info.hostname, sizeof(info.hostname)));
}

// The bytes of one connection, from the fuzz input.
class MemReader final : public WireReader {
 public:
  MemReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  IoStatus read(void* data, size_t n) override {
    if (n > n_ - pos_) return {IoStatus::kClosed, 0};
    if (n) memcpy(data, p_ + pos_, n);
    pos_ += n;
    return {};
  }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

bool rootHello(const uint8_t* p, size_t n) {
  uint8_t secret[32];
  testSecret(secret);
  RootHello out, before;
  memset(&out, 0xa5, sizeof(out));
  before = out;
  // The root judges the header alone first, then the whole frame (bootstrap_root.cc).
  const bool headerOk = n >= sizeof(WireHeader) &&
                        wireParseHeader(p, sizeof(WireHeader), kMsgHello, sizeof(RootHello), nullptr).ok();
  WireStatus s = wireParseRootHello(p, n, secret, &out);
  if (!s.ok()) {
    checkRejected(s);
    FUZZ_ASSERT(s.code == fcclRemoteError || s.code == fcclInvalidUsage);
    FUZZ_ASSERT(memcmp(&out, &before, sizeof(out)) == 0);
    return false;
  }
  FUZZ_ASSERT(headerOk && n == sizeof(WireHeader) + sizeof(RootHello));
  FUZZ_ASSERT(sameSecret(out.secret, secret));
  FUZZ_ASSERT(out.nranks >= 1 && out.nranks <= kMaxRanks && out.rank >= 0 && out.rank < out.nranks);
  FUZZ_ASSERT(out.timeoutMs >= 0 && out.timeoutMs <= kMaxWireTimeoutMs);
  checkPeerInfo(out.info, out.listenAddr);
  return true;
}

bool peerHello(const uint8_t* p, size_t n, int nranks) {
  uint8_t secret[32];
  testSecret(secret);
  PeerHello out, before;
  memset(&out, 0xa5, sizeof(out));
  before = out;
  WireStatus s = wireParsePeerHello(p, n, secret, nranks, &out);
  if (!s.ok()) {
    checkRejected(s);
    FUZZ_ASSERT(memcmp(&out, &before, sizeof(out)) == 0);
    return false;
  }
  FUZZ_ASSERT(sameSecret(out.secret, secret) && out.rank >= 0 && out.rank < nranks);
  FUZZ_ASSERT(out.kind == kConnRing || out.kind == kConnP2p);
  return true;
}

// Bootstrap::Impl::join after the hello: a header, then an error message or the table.
bool rootReply(const uint8_t* p, size_t n, int nranks) {
  MemReader in(p, n);
  WireHeader h;
  if (!in.read(&h, sizeof(h)).ok()) return false;
  if (wireParseHeader(&h, sizeof(h), kMsgError, sizeof(ErrorMsg), nullptr).ok()) {
    ErrorMsg msg;
    if (!in.read(&msg, sizeof(msg)).ok()) return false;
    fcclResult_t code = fcclSuccess;
    std::string text = "untouched";
    WireStatus s = wireParseErrorMsg(&msg, sizeof(msg), &code, &text);
    FUZZ_ASSERT(s.ok());
    FUZZ_ASSERT(code == fcclInvalidUsage || code == fcclInvalidArgument || code == fcclRemoteError);
    FUZZ_ASSERT(text.size() < sizeof(msg.text));
    for (char c : text) FUZZ_ASSERT(c >= 32 && c <= 126);
    // A truncated error message is rejected and changes nothing.
    WireStatus t = wireParseErrorMsg(&msg, sizeof(msg) - 1, &code, &text);
    checkRejected(t);
    return true;
  }
  const uint64_t tableBytes = uint64_t(nranks) * sizeof(TableEntry);
  WireStatus s = wireParseHeader(&h, sizeof(h), kMsgTable, tableBytes, nullptr);
  if (!s.ok()) {
    checkRejected(s);
    return false;
  }
  std::vector<char> raw(tableBytes);  // sized by this rank's nranks, never by the header
  if (!in.read(raw.data(), raw.size()).ok()) return false;
  std::vector<TableEntry> out(1);
  memset(out.data(), 0x5a, sizeof(TableEntry));
  const TableEntry sentinel = out[0];
  s = wireParseTable(raw.data(), raw.size(), nranks, &out);
  if (!s.ok()) {
    checkRejected(s);
    FUZZ_ASSERT(out.size() == 1 && memcmp(out.data(), &sentinel, sizeof(sentinel)) == 0);
    return false;
  }
  FUZZ_ASSERT(out.size() == size_t(nranks));
  for (int r = 0; r < nranks; r++) {
    FUZZ_ASSERT(out[size_t(r)].info.rank == r);
    checkPeerInfo(out[size_t(r)].info, out[size_t(r)].listenAddr);
  }
  // The same table one byte short or with one entry too many is rejected.
  checkRejected(wireParseTable(raw.data(), raw.size() - 1, nranks, &out));
  checkRejected(wireParseTable(raw.data(), raw.size(), nranks + 1, &out));
  FUZZ_ASSERT(out.size() == size_t(nranks));
  return true;
}

bool gatherHeader(const uint8_t* p, size_t n, uint32_t seq, uint64_t blockBytes) {
  WireStatus s = wireParseGatherHeader(p, n, seq, blockBytes);
  WireHeader h{};
  if (n == sizeof(h)) memcpy(&h, p, n);
  const bool valid = n == sizeof(h) && h.magic == kWireMagic && h.type == kMsgGather && h.tag == seq &&
                     h.length == blockBytes;
  FUZZ_ASSERT(s.ok() == valid);
  if (!valid) checkRejected(s);
  // Only a gather header that is well formed but for another call says "the ranks disagree".
  if (!valid && n == sizeof(h) && h.magic == kWireMagic && h.type == kMsgGather)
    FUZZ_ASSERT(s.code == fcclInvalidUsage);
  return valid;
}

// Bootstrap::recv over one connection, several times: small tags and sizes so that the
// stream's messages both match and miss.
bool p2pStream(const uint8_t* p, size_t n, const uint8_t* param) {
  MemReader in(p, n);
  std::deque<StashedMessage> stash;
  size_t stashBytes = 0;
  bool matched = false;
  for (int i = 0; i < 8; i++) {
    const uint32_t tag = uint32_t(param[0] + i) % 4;
    const size_t bytes = size_t(param[1] + i * param[2]) % 64;
    uint8_t data[64];
    memset(data, 0xa5, sizeof(data));
    const size_t stashBefore = stash.size();
    WireStatus s = wireRecvP2p(in, tag, data, bytes, /*peer=*/1, &stash, &stashBytes);
    size_t sum = 0;
    for (const StashedMessage& m : stash) {
      FUZZ_ASSERT(m.peer == 1 && m.data.size() <= kMaxMessageBytes);
      sum += m.data.size();
    }
    FUZZ_ASSERT(sum == stashBytes && stashBytes <= kMaxStashBytes);
    for (size_t k = stashBefore; k < stash.size(); k++) FUZZ_ASSERT(stash[k].tag != tag);
    if (s.ok()) {
      // The payload is exactly the last `bytes` bytes read, and nothing past it was touched.
      FUZZ_ASSERT(in.pos() >= bytes && memcmp(data, p + in.pos() - bytes, bytes) == 0);
      for (size_t k = bytes; k < sizeof(data); k++) FUZZ_ASSERT(data[k] == 0xa5);
      matched = true;
      continue;
    }
    checkRejected(s);
    if (s.io.ok()) {
      FUZZ_ASSERT(s.code == fcclInvalidUsage || s.code == fcclInternalError);
      if (s.code == fcclInvalidUsage)  // a size mismatch: read, dropped, data untouched
        for (uint8_t b : data) FUZZ_ASSERT(b == 0xa5);
    }
    if (s.code != fcclInvalidUsage) break;  // the stream ended or lost sync
  }
  return matched;
}

bool runOne(const uint8_t* data, size_t size) {
  if (size < kParamBytes) return false;
  const uint8_t* param = data + 1;
  const uint8_t* p = data + kParamBytes;
  const size_t n = size - kParamBytes;
  switch (data[0] % kModes) {
    case kRootHello:
      return rootHello(p, n);
    case kPeerHello:
      return peerHello(p, n, 1 + param[0] % 64);
    case kRootReply:
      return rootReply(p, n, 1 + param[0] % 8);
    case kGatherHeader:
      return gatherHeader(p, n, uint32_t(param[0]) | uint32_t(param[1]) << 8,
                          uint64_t(param[2]) | uint64_t(param[3]) << 8);
    case kP2pStream:
      return p2pStream(p, n, param);
  }
  return false;
}

// ---- seeds: one valid input per message kind ----

std::vector<uint8_t> seed(Mode mode, std::initializer_list<uint8_t> params) {
  std::vector<uint8_t> s{uint8_t(mode)};
  s.insert(s.end(), params.begin(), params.end());
  s.resize(kParamBytes, 0);
  return s;
}

using fuzzmain::append;

SocketAddress loopback(bool v6, uint16_t port) {
  SocketAddress a{};
  if (v6) {
    a.sin6.sin6_family = AF_INET6;
    a.sin6.sin6_addr = in6addr_loopback;
    a.sin6.sin6_port = htons(port);
  } else {
    a.sin.sin_family = AF_INET;
    a.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin.sin_port = htons(port);
  }
  return a;
}

PeerInfo peerInfo(int rank) {
  PeerInfo info{};
  info.rank = rank;
  info.pid = 1000 + rank;
  info.hostHash = 0x1234;
  info.commHash = 0x5678;
  snprintf(info.hostname, sizeof(info.hostname), "node%d", rank);
  return info;
}

std::vector<fuzzmain::Seed> seeds() {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  for (int v6 = 0; v6 < 2; v6++) {
    std::vector<uint8_t> s = seed(kRootHello, {});
    append(&s, makeHeader(kMsgHello, 0, sizeof(RootHello)));
    RootHello h{};
    testSecret(h.secret);
    h.rank = 1;
    h.nranks = 4;
    h.timeoutMs = 30000;
    h.listenAddr = loopback(v6, 40000);
    h.info = peerInfo(1);
    append(&s, h);
    out.push_back({v6 ? "root_hello_v6" : "root_hello_v4", s});
  }
  {
    std::vector<uint8_t> s = seed(kPeerHello, {3});  // nranks 4
    append(&s, makeHeader(kMsgPeerHello, 0, sizeof(PeerHello)));
    PeerHello h{};
    testSecret(h.secret);
    h.rank = 2;
    h.kind = kConnP2p;
    append(&s, h);
    out.push_back({"peer_hello", s});
  }
  {
    std::vector<uint8_t> s = seed(kRootReply, {2});  // nranks 3
    append(&s, makeHeader(kMsgTable, 0, 3 * sizeof(TableEntry)));
    for (int r = 0; r < 3; r++) {
      TableEntry e{};
      e.listenAddr = loopback(r == 1, uint16_t(40000 + r));
      e.info = peerInfo(r);
      append(&s, e);
    }
    out.push_back({"root_table", s});
  }
  {
    std::vector<uint8_t> s = seed(kRootReply, {0});
    append(&s, makeHeader(kMsgError, 0, sizeof(ErrorMsg)));
    ErrorMsg m{};
    m.code = fcclInvalidUsage;
    snprintf(m.text, sizeof(m.text), "rank 1 says nranks=3 but rank 0 said nranks=2");
    append(&s, m);
    out.push_back({"root_error", s});
  }
  {
    std::vector<uint8_t> s = seed(kGatherHeader, {7, 0, 16, 0});  // #7 of 16 bytes
    append(&s, makeHeader(kMsgGather, 7, 16));
    out.push_back({"gather_header", s});
  }
  {
    // recv tag 1 of 8 bytes: first a message with tag 2 (stashed), then the match.
    std::vector<uint8_t> s = seed(kP2pStream, {1, 8, 0});
    append(&s, makeHeader(kMsgP2p, 2, 5));
    for (uint8_t b : {'h', 'e', 'l', 'l', 'o'}) s.push_back(b);
    append(&s, makeHeader(kMsgP2p, 1, 8));
    for (int i = 0; i < 8; i++) s.push_back(uint8_t(i));
    out.push_back({"p2p_stream", s});
  }
  return out;
}

}  // namespace

FCCL_FUZZ_MAIN("fuzz_bootstrap")
