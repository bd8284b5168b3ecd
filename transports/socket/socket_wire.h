// socket_wire.h - what the socket transport puts on the wire, and the checks every received
// byte passes before it is used: the connect blob (where a rank listens), the handshake that
// makes every data connection prove the communicator's secret (a keyed hash, SipHash-2-4, of a
// fresh nonce: the secret itself never travels), and the frame header in front of every task of
// every message. Pure functions over plain structs, so the fuzz target drives exactly what the
// helper threads run.
//
// A message is one FIFO slot. It is cut into tasks of at least kMinTaskBytes spread over the
// nsocks sockets of a direction: task j of message seq travels on socket (seq + j) % nsocks, so
// every socket carries at most one task of a message and its tasks arrive in seq order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include "src/base/socket.h"

namespace fccl {

constexpr uint32_t kSocketBlobMagic = 0x6b6f5366u;   // "fSok"
constexpr uint32_t kSocketHelloMagic = 0x6c654866u;  // "fHel"
constexpr uint32_t kSocketAckMagic = 0x6b634166u;    // "fAck"
constexpr uint32_t kSocketFrameMagic = 0x6d724666u;  // "fFrm"
constexpr uint16_t kSocketWireVersion = 1;
constexpr size_t kMinTaskBytes = 64 * 1024;
constexpr int kMaxSocksPerPeer = 64;

// This rank's part of the connect blob.
struct SocketBlob {
  uint32_t magic;
  uint16_t version;
  uint16_t nsocks;  // sockets this rank opens per peer to send (the receiver accepts as many)
  SocketAddress addr;
  char ifname[16];
};

// Connector -> acceptor, first bytes of every data connection.
struct SocketHello {
  uint32_t magic;
  uint16_t version;
  uint16_t nsocks;  // the connector's sockets per direction
  int32_t rank;     // the connector
  int32_t index;    // which of its sockets this is
  uint64_t commHash;
  uint8_t nonce[16];
  uint64_t proof;  // siphash(key, every field above)
};

// Acceptor -> connector: the acceptor proves the secret back over the connector's nonce.
struct SocketAck {
  uint32_t magic;
  int32_t rank;  // the acceptor
  uint64_t proof;
};

// In front of every task.
struct FrameHeader {
  uint32_t magic;
  uint16_t task;      // index of this task within the message
  uint16_t ntasks;    // tasks of the message
  uint64_t seq;       // the message's number on this sender -> receiver direction
  uint32_t bytes;     // the message's bytes (SlotMeta::bytes)
  uint32_t offset;    // this task's first byte within the message
  uint32_t len;       // this task's bytes
  uint32_t tag;       // SlotMeta::tag
  uint64_t msgBytes;  // SlotMeta::msgBytes
  uint64_t check;     // a hash of the fields above: a stream out of step is caught at once
};
static_assert(sizeof(FrameHeader) == 48, "frame header layout");

// SipHash-2-4 of data under a 128-bit key.
uint64_t sipHash24(const uint8_t key[16], const void* data, size_t n);
// The communicator's 16-byte connection key, from the unique id's 32-byte secret.
void socketKeyFromSecret(const uint8_t secret[32], uint8_t key[16]);

uint64_t helloProof(const uint8_t key[16], const SocketHello& h);
uint64_t ackProof(const uint8_t key[16], const SocketHello& h, int32_t acceptorRank);

// Task layout of a message of `bytes` over `nsocks` sockets.
size_t taskBytes(size_t bytes, int nsocks);
int taskCount(size_t bytes, int nsocks);

void frameSeal(FrameHeader* h);
// Checks a received header against what this receiver knows: its socket `index` of `nsocks`,
// the slot size, the lowest message number not yet complete (`tail`) and the last one this
// socket carried (`lastSeq`, or UINT64_MAX before the first). False with *why on a bad header.
bool frameCheck(const FrameHeader& h, int index, int nsocks, size_t slotBytes, uint64_t tail,
                uint64_t lastSeq, std::string* why);

// Checks a received hello: magic, version, this communicator, a rank among `nranks`, a socket
// index within its nsocks, and the proof. *why says what failed.
bool helloCheck(const SocketHello& h, const uint8_t key[16], uint64_t commHash, int nranks, std::string* why);

}  // namespace fccl
