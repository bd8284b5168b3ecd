// fuzz_socket_wire.cc - libFuzzer target over what the socket transport's helper threads parse
// from a data connection (transports/socket/socket_wire.h): the frame header in front of every
// task (frameCheck, with the receiver's socket index, sockets, slot size, next message due and
// the socket's last message taken from the input) and the hello that opens a connection
// (helloCheck). The first input byte picks the check, the rest are its parameters and the bytes
// on the wire. Invariants beyond the sanitizers: a rejection carries a sentence; an accepted
// frame lies inside its message and its slot, on the socket its numbering assigns, in order,
// covering the message exactly with its sibling tasks; an accepted hello names a rank in range
// and carries the proof of the key. `--write-seeds=DIR` writes valid headers, each checked to be
// accepted, and exits. The stream mode feeds the rest of the input, as the bytes a peer sent,
// through a socketpair into a receive lane (socket_lanes.h: its read buffer, frames split or
// packed several to a read, slots released as the rank would): whatever the bytes, the lane
// ends with the link lost and a sentence (the stream's end, or a bad frame), every message it
// delivered fits its slot, and the sanitizers see no bad access.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_main.h"

#include <sys/socket.h>
#include <unistd.h>

#include "transports/socket/socket_lanes.h"
#include "transports/socket/socket_wire.h"

using namespace fccl;

namespace {

enum Mode : uint8_t {
  kFrame,
  kHello,
  kStream,
  kModes
};

#define FUZZ_ASSERT(cond)                                                                            \
  do {                                                                                               \
    if (!(cond)) {                                                                                   \
      fprintf(stderr, "fuzz_socket_wire: %s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                                       \
    }                                                                                                \
  } while (0)

// The receiver's side of a frame check, as the input's first bytes give it.
struct FrameParams {
  uint8_t index, nsocks;  // taken modulo a valid range
  uint32_t slotBytes;
  uint64_t tail, lastSeq;
};

void testKey(uint8_t key[16]) {
  for (int i = 0; i < 16; i++) key[i] = uint8_t(i * 29 + 3);
}
constexpr uint64_t kCommHash = 0x1234abcd5678ef00ull;
constexpr int kRanks = 8;

bool runFrame(const uint8_t* data, size_t size) {
  FrameParams p;
  FrameHeader h;
  if (size < sizeof(p) + sizeof(h)) return false;
  memcpy(&p, data, sizeof(p));
  memcpy(&h, data + sizeof(p), sizeof(h));
  const int nsocks = 1 + p.nsocks % kMaxSocksPerPeer, index = p.index % nsocks;
  const size_t slotBytes = p.slotBytes % (size_t(8) << 20);
  std::string why;
  if (!frameCheck(h, index, nsocks, slotBytes, p.tail, p.lastSeq, &why)) {
    FUZZ_ASSERT(!why.empty());
    return false;
  }
  FUZZ_ASSERT(why.empty());
  FUZZ_ASSERT(h.bytes <= slotBytes);
  FUZZ_ASSERT(h.task < h.ntasks && int(h.ntasks) == taskCount(h.bytes, nsocks));
  FUZZ_ASSERT(uint64_t(h.offset) + h.len <= h.bytes);
  FUZZ_ASSERT(int((h.seq + h.task) % uint64_t(nsocks)) == index);
  FUZZ_ASSERT(h.seq >= p.tail && (p.lastSeq == UINT64_MAX || h.seq > p.lastSeq));
  // The sibling tasks the same rules accept tile the message exactly.
  size_t covered = 0;
  for (int t = 0; t < h.ntasks; ++t) {
    const size_t tb = taskBytes(h.bytes, nsocks), off = size_t(t) * tb;
    FUZZ_ASSERT(off == covered || h.bytes == 0);
    covered += h.bytes == 0 ? 0 : (h.bytes - off < tb ? h.bytes - off : tb);
  }
  FUZZ_ASSERT(covered == h.bytes);
  return true;
}

bool runHello(const uint8_t* data, size_t size) {
  SocketHello h;
  if (size < sizeof(h)) return false;
  memcpy(&h, data, sizeof(h));
  uint8_t key[16];
  testKey(key);
  std::string why;
  if (!helloCheck(h, key, kCommHash, kRanks, &why)) {
    FUZZ_ASSERT(!why.empty());
    return false;
  }
  FUZZ_ASSERT(h.rank >= 0 && h.rank < kRanks);
  FUZZ_ASSERT(h.index >= 0 && h.index < h.nsocks && h.nsocks <= kMaxSocksPerPeer);
  FUZZ_ASSERT(h.proof == helloProof(key, h));
  return true;
}

// The stream's receiver: one lane of `nsocks` (the first byte picks 1 or 2; lane 0), 4 slots of
// kStreamSlot bytes. True if it delivered a message and then saw the stream end between frames.
constexpr size_t kStreamSlot = 8192;
constexpr size_t kMaxStream = 64 * 1024;  // what one write into the socketpair takes at once

bool runStream(const uint8_t* data, size_t size) {
  if (size < 1 || size - 1 > kMaxStream) return false;
  const int nsocks = 1 + data[0] % 2;
  int sv[2];
  FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  int buf = int(2 * kMaxStream);
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  FUZZ_ASSERT(write(sv[1], data + 1, size - 1) == ssize_t(size - 1));
  close(sv[1]);
  SocketLink link(1, 4, kStreamSlot);
  link.name = "rank 1 (fuzz)";
  link.recvFds = {sv[0]};  // the link closes it
  Lane lane;
  lane.link = &link;
  lane.send = false;
  lane.index = 0;
  lane.nsocks = nsocks;
  lane.fd = sv[0];
  // What a plain reader finds in the stream: the frames in order, each header then its payload.
  // A message the lane delivers is one of them (one task: a slot's bytes are under 64 KiB), and
  // its slot must hold that payload.
  std::vector<std::pair<const uint8_t*, FrameHeader>> frames;
  for (size_t at = 1; at + sizeof(FrameHeader) <= size;) {
    FrameHeader h;
    memcpy(&h, data + at, sizeof(h));
    at += sizeof(h);
    if (h.len > size - at) break;
    frames.push_back({data + at, h});
    at += h.len;
  }
  uint64_t released = 0;
  for (int round = 0; round < 100000 && !link.lost(); ++round) {
    bool moved = lane.step();
    // The rank: check every delivered slot against the plain reader's frame, release it.
    const uint64_t tail = link.recvCtrl->tail.load();
    for (; released < tail; ++released) {
      const SlotMeta& m = link.recvCtrl->meta[released % 4];
      FUZZ_ASSERT(m.bytes <= kStreamSlot);
      FUZZ_ASSERT(released < frames.size());
      const FrameHeader& f = frames[released].second;
      FUZZ_ASSERT(f.seq == released && f.bytes == m.bytes && f.len == m.bytes && f.tag == m.tag);
      FUZZ_ASSERT(memcmp(link.recvSlots + (released % 4) * kStreamSlot, frames[released].first, m.bytes) ==
                  0);
      moved = true;
    }
    link.recvCtrl->head.store(tail);
    FUZZ_ASSERT(moved || link.lost());  // the writer is closed: a step always reads or ends
  }
  FUZZ_ASSERT(link.lost() && !link.lostWhy().empty());
  return released > 0 && lane.eof;
}

bool runOne(const uint8_t* data, size_t size) {
  if (size < 1) return false;
  switch (data[0] % kModes) {
    case kFrame:
      return runFrame(data + 1, size - 1);
    case kHello:
      return runHello(data + 1, size - 1);
    default:
      return runStream(data + 1, size - 1);
  }
}

std::vector<fuzzmain::Seed> seeds() {
  std::vector<fuzzmain::Seed> out;
  // Every task of a 300 KiB message over 3 sockets, and an empty message.
  for (uint32_t bytes : {300u * 1024u, 0u}) {
    const int nsocks = 3, nt = taskCount(bytes, nsocks);
    for (int t = 0; t < nt; ++t) {
      FrameHeader h{};
      h.magic = kSocketFrameMagic;
      h.task = uint16_t(t);
      h.ntasks = uint16_t(nt);
      h.seq = 41;
      h.bytes = bytes;
      h.offset = uint32_t(size_t(t) * taskBytes(bytes, nsocks));
      h.len = bytes == 0 ? 0 : uint32_t(std::min<size_t>(taskBytes(bytes, nsocks), bytes - h.offset));
      h.tag = 0xfeedu;
      h.msgBytes = bytes;
      frameSeal(&h);
      FrameParams p{uint8_t((41 + t) % nsocks), uint8_t(nsocks - 1), 512u * 1024u, 40, 38};
      std::vector<uint8_t> s{uint8_t(kFrame)};
      fuzzmain::append(&s, p);
      fuzzmain::append(&s, h);
      out.push_back({"frame_" + std::to_string(bytes) + "_" + std::to_string(t), s});
    }
  }
  SocketHello h{};
  h.magic = kSocketHelloMagic;
  h.version = kSocketWireVersion;
  h.nsocks = 2;
  h.rank = 5;
  h.index = 1;
  h.commHash = kCommHash;
  for (int i = 0; i < 16; i++) h.nonce[i] = uint8_t(i);
  uint8_t key[16];
  testKey(key);
  h.proof = helloProof(key, h);
  std::vector<uint8_t> s{uint8_t(kHello)};
  fuzzmain::append(&s, h);
  out.push_back({"hello", s});
  // A stream of small messages over one socket, then its end.
  std::vector<uint8_t> st{uint8_t(kStream), 0};
  for (uint64_t seq = 0; seq < 6; ++seq) {
    const uint32_t bytes = uint32_t(seq * 1500 % 8000);
    FrameHeader f{};
    f.magic = kSocketFrameMagic;
    f.ntasks = 1;
    f.seq = seq;
    f.bytes = f.len = bytes;
    f.tag = uint32_t(seq);
    f.msgBytes = bytes;
    frameSeal(&f);
    fuzzmain::append(&st, f);
    for (uint32_t i = 0; i < bytes; ++i) st.push_back(uint8_t(i * 7 + seq));
  }
  out.push_back({"stream", st});
  return out;
}

}  // namespace

FCCL_FUZZ_MAIN("fuzz_socket_wire")
