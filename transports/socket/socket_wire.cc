// socket_wire.cc - see socket_wire.h.
#include "transports/socket/socket_wire.h"
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace fccl {

namespace {

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;  // little-endian hosts only, like the rest of the wire
}

std::string fmt(const char* f, unsigned long long a, unsigned long long b = 0, unsigned long long c = 0) {
  char buf[160];
  snprintf(buf, sizeof(buf), f, a, b, c);
  return buf;
}

}  // namespace

uint64_t sipHash24(const uint8_t key[16], const void* data, size_t n) {
  const uint8_t* in = static_cast<const uint8_t*>(data);
  const uint64_t k0 = load64(key), k1 = load64(key + 8);
  uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
  auto round = [&] {
    v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);
    v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;
    v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;
    v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);
  };
  const size_t whole = n & ~size_t(7);
  for (size_t i = 0; i < whole; i += 8) {
    const uint64_t m = load64(in + i);
    v3 ^= m;
    round(), round();
    v0 ^= m;
  }
  uint64_t last = uint64_t(n & 0xff) << 56;
  for (size_t i = 0; i < (n & 7); ++i) last |= uint64_t(in[whole + i]) << (8 * i);
  v3 ^= last;
  round(), round();
  v0 ^= last;
  v2 ^= 0xff;
  round(), round(), round(), round();
  return v0 ^ v1 ^ v2 ^ v3;
}

void socketKeyFromSecret(const uint8_t secret[32], uint8_t key[16]) {
  // A key of its own for data connections (the bootstrap proves the secret its own way).
  static const uint8_t kLabel[16] = {'f', 'c', 'c', 'l', ' ', 's', 'o', 'c',
                                     'k', 'e', 't', ' ', 'k', 'e', 'y', 1};
  uint8_t half[16];
  for (int i = 0; i < 16; ++i) half[i] = secret[i] ^ secret[16 + i];
  const uint64_t a = sipHash24(half, kLabel, 8), b = sipHash24(half, kLabel + 8, 8);
  memcpy(key, &a, 8);
  memcpy(key + 8, &b, 8);
}

uint64_t helloProof(const uint8_t key[16], const SocketHello& h) {
  return sipHash24(key, &h, offsetof(SocketHello, proof));
}

uint64_t ackProof(const uint8_t key[16], const SocketHello& h, int32_t acceptorRank) {
  // Over the connector's whole hello (its nonce included) and the acceptor's rank, with a
  // different first word than any hello, so a hello's proof never serves as an ack's.
  uint8_t msg[sizeof(SocketHello) + 8];
  const uint32_t magic = kSocketAckMagic;
  memcpy(msg, &magic, 4);
  memcpy(msg + 4, &acceptorRank, 4);
  memcpy(msg + 8, &h, sizeof(h));
  return sipHash24(key, msg, sizeof(msg));
}

size_t taskBytes(size_t bytes, int nsocks) {
  const size_t share = (bytes + size_t(nsocks) - 1) / size_t(nsocks);
  const size_t rounded = (share + 4095) / 4096 * 4096;
  return rounded < kMinTaskBytes ? kMinTaskBytes : rounded;
}

int taskCount(size_t bytes, int nsocks) {
  if (bytes == 0) return 1;  // the header still carries the tag
  const size_t t = taskBytes(bytes, nsocks);
  return int((bytes + t - 1) / t);
}

namespace {

uint64_t frameHash(const FrameHeader& h) {
  static const uint8_t kKey[16] = {'f', 'c', 'c', 'l', 'f', 'r', 'a', 'm',
                                   'e', 'h', 'e', 'a', 'd', 'e', 'r', 1};
  return sipHash24(kKey, &h, offsetof(FrameHeader, check));
}

}  // namespace

void frameSeal(FrameHeader* h) {
  h->magic = kSocketFrameMagic;
  h->check = frameHash(*h);
}

bool frameCheck(const FrameHeader& h, int index, int nsocks, size_t slotBytes, uint64_t tail,
                uint64_t lastSeq, std::string* why) {
  if (h.magic != kSocketFrameMagic) return *why = fmt("bad frame magic %08llx", h.magic), false;
  if (h.check != frameHash(h)) return *why = "frame header checksum mismatch (stream out of step)", false;
  if (h.bytes > slotBytes)
    return *why = fmt("message of %llu bytes exceeds the %llu-byte slot", h.bytes, slotBytes), false;
  const int nt = taskCount(h.bytes, nsocks);
  if (h.ntasks != nt || h.task >= h.ntasks)
    return *why = fmt("task %llu of %llu does not fit a message of %llu bytes", h.task, h.ntasks, h.bytes),
           false;
  const size_t tb = taskBytes(h.bytes, nsocks), off = size_t(h.task) * tb;
  const size_t len = h.bytes == 0 ? 0 : (h.bytes - off < tb ? h.bytes - off : tb);
  if (h.offset != off || h.len != len)
    return *why = fmt("task at offset %llu of %llu bytes, expected offset %llu", h.offset, h.len, off), false;
  if (int((h.seq + h.task) % uint64_t(nsocks)) != index)
    return *why = fmt("task %llu of message %llu arrived on socket %llu", h.task, h.seq, index), false;
  if (h.seq < tail || (lastSeq != UINT64_MAX && h.seq <= lastSeq))
    return *why =
               fmt("message %llu is out of order (socket's last %llu, next due %llu)", h.seq, lastSeq, tail),
           false;
  if (h.seq - tail > (uint64_t(1) << 32))
    return *why = fmt("message %llu is implausibly far ahead of %llu", h.seq, tail), false;
  return true;
}

bool helloCheck(const SocketHello& h, const uint8_t key[16], uint64_t commHash, int nranks,
                std::string* why) {
  if (h.magic != kSocketHelloMagic) return *why = "not an fccl socket hello (bad magic)", false;
  if (h.version != kSocketWireVersion)
    return *why = fmt("wire version %llu, expected %llu", h.version, 1), false;
  if (h.commHash != commHash) return *why = "a hello for another communicator", false;
  if (h.rank < 0 || h.rank >= nranks) return *why = fmt("rank %llu out of range", (unsigned)h.rank), false;
  if (h.nsocks < 1 || h.nsocks > kMaxSocksPerPeer || h.index < 0 || h.index >= h.nsocks)
    return *why = fmt("socket %llu of %llu out of range", (unsigned)h.index, h.nsocks), false;
  if (h.proof != helloProof(key, h)) return *why = "wrong proof of the communicator's secret", false;
  return true;
}

}  // namespace fccl
