// device_plan.cc - see device_plan.h.
#include "src/cuda/device_plan.h"

#include <algorithm>

#include "src/base/dtype.h"
#include "src/base/error.h"

namespace fccl::cuda {

int agreedChannels(const std::vector<uint64_t>& gpu, const std::vector<int>& sms, int64_t override) {
  if (override > 0) return int(std::min<int64_t>(override, kMaxChannels));
  int channels = kMaxChannels;
  for (size_t r = 0; r < gpu.size(); ++r) {
    const int onGpu = int(std::count(gpu.begin(), gpu.end(), gpu[r]));
    channels = std::min(channels, std::max(2, std::min(kMaxChannels, sms[r] / (2 * onGpu))));
  }
  return channels;
}

dev::DevProto deviceProto(const CollTask& t, const std::string& forced) {
  if (forced == "LL") return dev::DevProto::LL;
  if (forced == "Simple") return dev::DevProto::Simple;
  // The threshold is NCCL's order of magnitude for a few ranks on one node; not yet tuned on a GPU.
  return t.count * dtypeSize(t.type) <= kLLMaxBytes ? dev::DevProto::LL : dev::DevProto::Simple;
}

size_t protoSlotBytes(dev::DevProto p, size_t slotBytes) {
  return p == dev::DevProto::LL ? dev::kLLSlotBytes / sizeof(dev::LLLine) * dev::kLLLineData : slotBytes;
}

size_t deviceChunkElems(const CollTask& t, int nranks, int nchannels, size_t slotBytes) {
  const size_t elem = dtypeSize(t.type), pack = 16 / elem, slotElems = slotBytes / elem;
  const bool sliced = t.kind == CollKind::AllReduce || t.kind == CollKind::ReduceScatterSliced ||
                      t.kind == CollKind::AllGatherSliced;
  const size_t loop = sliced ? (t.count + nranks - 1) / nranks : t.count;
  size_t share = (loop + nchannels - 1) / nchannels;
  share = std::max(pack, (share + pack - 1) / pack * pack);
  return std::min(slotElems, share);
}

fcclResult_t planP2p(const CollTask* tasks, size_t ntasks, int rank, int nranks, const char* name,
                     P2pPlan* plan) {
  plan->rounds.clear();
  plan->selfCopies.clear();
  std::vector<std::vector<dev::DevP2pTask>> sends(nranks), recvs(nranks);
  std::vector<const CollTask*> selfSends, selfRecvs;
  size_t rounds = 0;
  for (size_t i = 0; i < ntasks; ++i) {
    const CollTask& t = tasks[i];
    const size_t bytes = t.count * dtypeSize(t.type);
    if (bytes == 0) continue;  // as NCCL: moves nothing
    const bool isSend = t.kind == CollKind::Send;
    if (t.root == rank) {
      (isSend ? selfSends : selfRecvs).push_back(&t);
      continue;
    }
    char* buf = isSend ? const_cast<char*>(static_cast<const char*>(t.send)) : static_cast<char*>(t.recv);
    auto& list = (isSend ? sends : recvs)[t.root];
    list.push_back(dev::DevP2pTask{buf, bytes, t.root, isSend ? 1 : 0});
    rounds = std::max(rounds, list.size());
  }
  if (selfSends.size() != selfRecvs.size())
    return setError(fcclInvalidUsage, "%s: rank %d: %zu sends to itself but %zu receives from itself", name,
                    rank, selfSends.size(), selfRecvs.size());
  for (size_t k = 0; k < selfSends.size(); ++k) {
    const size_t sb = selfSends[k]->count * dtypeSize(selfSends[k]->type);
    const size_t rb = selfRecvs[k]->count * dtypeSize(selfRecvs[k]->type);
    if (sb != rb)
      return setError(fcclInvalidUsage,
                      "%s: rank %d: a send of %zu bytes to itself meets a receive of %zu bytes", name, rank,
                      sb, rb);
    plan->selfCopies.emplace_back(selfSends[k], selfRecvs[k]);
  }
  plan->rounds.resize(rounds);
  for (size_t k = 0; k < rounds; ++k)
    for (int q = 0; q < nranks; ++q)
      for (const auto* list : {&sends[q], &recvs[q]}) {
        if (k >= list->size()) continue;
        if (plan->rounds[k].size() == size_t(dev::kMaxP2pTasks))
          return setError(
              fcclInvalidUsage,
              "%s: rank %d: more than %d peers and directions in one group on a device communicator", name,
              rank, dev::kMaxP2pTasks);
        plan->rounds[k].push_back((*list)[k]);
      }
  return fcclSuccess;
}

}  // namespace fccl::cuda
