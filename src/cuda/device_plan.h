// device_plan.h - the CUDA backend's decisions that need no GPU, so they are built and tested in
// every configuration: how many channels the ranks of a GPU run, the chunk of a collective, and
// how the sends and receives of a group become point-to-point kernel launches.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "collectives/coll.h"
#include "collectives/device_types.h"

namespace fccl::cuda {

constexpr int kMaxChannels = 32;

// Channels (CTAs per kernel) every rank runs: `override` (FCCL_MAX_NCHANNELS) when > 0, else
// for each rank one CTA per two SMs of its GPU shared by the ranks on that GPU (2 to 32), and
// the smallest over the ranks (a ring's channel c links channel c of every rank).
// gpu[r]: an identity of rank r's GPU (equal for ranks on one GPU); sms[r]: its SM count.
int agreedChannels(const std::vector<uint64_t>& gpu, const std::vector<int>& sms, int64_t override);

// The protocol of a collective on device buffers: `forced` (FCCL_PROTO: "Simple" or "LL") when
// set, else LL for messages up to kLLMaxBytes and Simple above. Every rank decides alike.
constexpr size_t kLLMaxBytes = 64 * 1024;
dev::DevProto deviceProto(const CollTask& t, const std::string& forced);
// The data bytes one FIFO slot of a protocol carries (the chunk's bound, as slotBytes).
size_t protoSlotBytes(dev::DevProto p, size_t slotBytes);

// Elements per chunk of a collective over nchannels channels of slotBytes FIFO slots: a whole
// slot for large messages; for small ones a multiple of 16 bytes that gives every channel a part
// (collectives/device_kernels.cuh devChannelPart splits the loop the same way).
size_t deviceChunkElems(const CollTask& t, int nranks, int nchannels, size_t slotBytes);

// The sends and receives of one group as launches: rounds[k] holds the k-th message of each
// (peer, direction), so a peer's matching message is in its own round k and every CTA of a
// launch owns one side of one peer's channel; a send to ourselves meets the receive from
// ourselves of the same position (selfCopies: {send, recv}). Zero-byte messages move nothing.
struct P2pPlan {
  std::vector<std::vector<dev::DevP2pTask>> rounds;
  std::vector<std::pair<const CollTask*, const CollTask*>> selfCopies;
};
// fcclInvalidUsage with a sentence naming `name` when sends and receives to ourselves do not
// pair up (count or size), or a round would need more than dev::kMaxP2pTasks CTAs.
fcclResult_t planP2p(const CollTask* tasks, size_t ntasks, int rank, int nranks, const char* name,
                     P2pPlan* plan);

}  // namespace fccl::cuda
