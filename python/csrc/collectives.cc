// collectives.cc - FcclBackend's collectives: each checks its arguments on the caller's thread,
// then queues an Op (work.h) whose issue() makes the fccl calls on the worker. Where torch's
// layout is not fccl's (a list of output tensors, an input that overlaps the output outside the
// in-place position, uneven all-to-all splits) a staging buffer or a group of send/recv pairs
// bridges it. Reductions fccl has no kernel for gather and reduce in rank order (types.h).
#include <c10/util/Exception.h>

#include <numeric>

#include "backend.h"
#include "types.h"

namespace fccl_torch {

using c10d::OpType;

namespace {

void checkOne(const std::vector<at::Tensor>& tensors, const char* api) {
  TORCH_CHECK_VALUE(tensors.size() == 1, "fccl ", api, ": expects one tensor per process, got ",
                    tensors.size());
}

// The flat storage-order view of a dense tensor (what fccl reads and writes).
at::Tensor flat(const at::Tensor& t) { return t.as_strided({t.numel()}, {1}, t.storage_offset()); }

// Runs fn(op) with r's fccl operator: the built-in one, or a PreMulSum operator made from the
// factor's current value and destroyed after the call.
template <typename Fn>
void withRedOp(FcclBackend* b, const Reduction& r, Fn&& fn) {
  if (!r.premul) {
    fn(r.op);
    return;
  }
  at::Tensor scalar = at::scalar_tensor(premulFactor(r), at::TensorOptions().dtype(r.view.scalar_type()));
  fcclRedOp_t op;
  b->check(fcclRedOpCreatePreMulSum(&op, scalar.data_ptr(), r.type, fcclScalarHostImmediate, b->comm()),
           "fcclRedOpCreatePreMulSum");
  try {
    fn(op);
  } catch (...) {
    fcclRedOpDestroy(op, b->comm());
    throw;
  }
  b->check(fcclRedOpDestroy(op, b->comm()), "fcclRedOpDestroy");
}

// Every rank's copy of t (storage order), stacked: [nranks, numel].
at::Tensor gatherAll(FcclBackend* b, const at::Tensor& t, const char* api) {
  at::Tensor stacked =
      at::empty({b->getSize(), t.numel()}, t.options().memory_format(at::MemoryFormat::Contiguous));
  Buf in = moveBuf(t);
  b->check(fcclAllGather(in.ptr, stacked.data_ptr(), in.count, in.type, b->comm(), nullptr), api);
  return stacked;
}

// An allreduce of t in place, native or by the fallback.
Op allreduceOp(FcclBackend* b, const at::Tensor& t, const Reduction& r, const c10d::ReduceOp& rop,
               const char* api) {
  Op op;
  if (r.native) {
    op.groupable = !r.premul;
    op.issue = [b, r, api] {
      withRedOp(b, r, [&](fcclRedOp_t o) {
        void* p = r.view.data_ptr();
        b->check(fcclAllReduce(p, p, r.view.numel(), r.type, o, b->comm(), nullptr), api);
      });
    };
  } else {
    op.groupable = false;
    op.issue = [b, t, r, rop, api] { flat(t).copy_(reduceLocally(gatherAll(b, t, api), rop, r)); };
  }
  return op;
}

// Combines ops into one: inside a group of their own when they all can be, else one by one.
Op combine(FcclBackend* b, std::vector<Op> ops) {
  bool groupable = true;
  for (const Op& o : ops) groupable = groupable && o.groupable;
  auto shared = std::make_shared<std::vector<Op>>(std::move(ops));
  Op op;
  op.groupable = groupable;
  if (groupable) {
    op.issue = [b, shared] {
      b->check(fcclGroupStart(), "fcclGroupStart");
      std::exception_ptr error;
      for (Op& o : *shared) {
        try {
          o.issue();
        } catch (...) {
          error = std::current_exception();
          break;
        }
      }
      fcclResult_t r = fcclGroupEnd();
      if (error) std::rethrow_exception(error);
      b->check(r, "fcclGroupEnd");
    };
    op.finish = [shared] {
      for (Op& o : *shared) {
        if (o.finish) o.finish();
      }
    };
  } else {
    op.issue = [shared] {
      for (Op& o : *shared) {
        o.issue();
        if (o.finish) o.finish();
      }
    };
  }
  return op;
}

void checkRoot(FcclBackend* b, int64_t root, const char* api) {
  TORCH_CHECK_VALUE(root >= 0 && root < b->getSize(), "fccl ", api, ": root ", root, " is not a rank of ",
                    "this group (size ", b->getSize(), ")");
}

}  // namespace

c10::intrusive_ptr<c10d::Work> FcclBackend::broadcast(std::vector<at::Tensor>& tensors,
                                                      const c10d::BroadcastOptions& opts) {
  const char* api = "broadcast";
  checkOne(tensors, api);
  checkTensor(tensors[0], api);
  checkRoot(this, opts.rootRank, api);
  at::Tensor t = tensors[0];
  const int root = static_cast<int>(opts.rootRank);
  Op op;
  op.issue = [this, t, root, api] {
    Buf b = moveBuf(t);
    check(fcclBroadcast(b.ptr, b.ptr, b.count, b.type, root, comm(), nullptr), api);
  };
  return enqueue(OpType::BROADCAST, "fccl:broadcast", {t}, {t}, std::move(op));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::allreduce(std::vector<at::Tensor>& tensors,
                                                      const c10d::AllreduceOptions& opts) {
  const char* api = "allreduce";
  checkOne(tensors, api);
  checkTensor(tensors[0], api);
  at::Tensor t = tensors[0];
  Reduction r = resolveReduction(t, opts.reduceOp, api);
  return enqueue(OpType::ALLREDUCE, "fccl:all_reduce", {t}, {t}, allreduceOp(this, t, r, opts.reduceOp, api));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::allreduce_coalesced(std::vector<at::Tensor>& tensors,
                                                                const c10d::AllreduceCoalescedOptions& opts) {
  const char* api = "allreduce_coalesced";
  std::vector<Op> ops;
  for (const at::Tensor& t : tensors) {
    checkTensor(t, api);
    ops.push_back(allreduceOp(this, t, resolveReduction(t, opts.reduceOp, api), opts.reduceOp, api));
  }
  return enqueue(OpType::ALLREDUCE_COALESCED, "fccl:all_reduce_coalesced", tensors, tensors,
                 combine(this, std::move(ops)));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::reduce(std::vector<at::Tensor>& tensors,
                                                   const c10d::ReduceOptions& opts) {
  const char* api = "reduce";
  checkOne(tensors, api);
  checkTensor(tensors[0], api);
  checkRoot(this, opts.rootRank, api);
  at::Tensor t = tensors[0];
  const int root = static_cast<int>(opts.rootRank);
  Reduction r = resolveReduction(t, opts.reduceOp, api);
  Op op;
  if (r.native) {
    op.groupable = !r.premul;
    op.issue = [this, r, root, api] {
      withRedOp(this, r, [&](fcclRedOp_t o) {
        void* p = r.view.data_ptr();
        check(fcclReduce(p, rank_ == root ? p : nullptr, r.view.numel(), r.type, o, root, comm(), nullptr),
              api);
      });
    };
  } else {
    op.groupable = false;
    c10d::ReduceOp rop = opts.reduceOp;
    op.issue = [this, t, r, rop, root, api] {
      at::Tensor stacked = gatherAll(this, t, api);
      if (rank_ == root) flat(t).copy_(reduceLocally(stacked, rop, r));
    };
  }
  return enqueue(OpType::REDUCE, "fccl:reduce", {t}, {t}, std::move(op));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                                      std::vector<at::Tensor>& inputs,
                                                      const c10d::AllgatherOptions& /*opts*/) {
  const char* api = "allgather";
  checkOne(inputs, api);
  TORCH_CHECK_VALUE(outputs.size() == 1, "fccl ", api, ": expects one list of output tensors, got ",
                    outputs.size());
  at::Tensor in = inputs[0];
  checkContiguous(in, api);
  std::vector<at::Tensor> outs = outputs[0];
  TORCH_CHECK_VALUE(static_cast<int>(outs.size()) == size_, "fccl ", api, ": expects ", size_,
                    " output tensors (one per rank), got ", outs.size());
  for (const at::Tensor& o : outs) {
    checkTensor(o, api);
    checkSameKind(o, in, api);
    TORCH_CHECK_VALUE(o.numel() == in.numel(), "fccl ", api, ": an output tensor has ", o.numel(),
                      " elements, the input ", in.numel());
  }
  auto stage = std::make_shared<at::Tensor>();
  Op op;
  op.issue = [this, in, stage, api] {
    *stage = at::empty({size_, in.numel()}, in.options());
    Buf b = moveBuf(in);
    check(fcclAllGather(b.ptr, stage->data_ptr(), b.count, b.type, comm(), nullptr), api);
  };
  op.finish = [outs, stage] {
    for (size_t i = 0; i < outs.size(); ++i) outs[i].copy_((*stage)[i].view(outs[i].sizes()));
  };
  return enqueue(OpType::ALLGATHER, "fccl:all_gather", outs, {in}, std::move(op));
}

namespace {

// An all-gather of `in` into `out` (nranks blocks); `in` is copied first when it overlaps `out`
// anywhere but at this rank's block (fccl's in-place position).
Op allgatherBaseOp(FcclBackend* b, const at::Tensor& out, const at::Tensor& in, const char* api) {
  checkContiguous(out, api);
  checkContiguous(in, api);
  checkSameKind(out, in, api);
  TORCH_CHECK_VALUE(out.numel() == in.numel() * b->getSize(), "fccl ", api, ": output has ", out.numel(),
                    " elements, expected ", b->getSize(), " x ", in.numel());
  const bool stage =
      overlaps(in, out) && static_cast<const char*>(in.data_ptr()) !=
                               static_cast<const char*>(out.data_ptr()) + b->getRank() * in.nbytes();
  Op op;
  op.issue = [b, out, in, stage, api] {
    at::Tensor src = stage ? in.clone() : in;
    Buf s = moveBuf(src);
    b->check(fcclAllGather(s.ptr, out.data_ptr(), s.count, s.type, b->comm(), nullptr), api);
  };
  return op;
}

}  // namespace

c10::intrusive_ptr<c10d::Work> FcclBackend::_allgather_base(at::Tensor& output, at::Tensor& input,
                                                            const c10d::AllgatherOptions& /*opts*/) {
  const char* api = "all_gather_into_tensor";
  return enqueue(OpType::_ALLGATHER_BASE, "fccl:_all_gather_base", {output}, {input},
                 allgatherBaseOp(this, output, input, api));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::allgather_into_tensor_coalesced(
    std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
    const c10d::AllgatherOptions& /*opts*/) {
  const char* api = "allgather_into_tensor_coalesced";
  TORCH_CHECK_VALUE(outputs.size() == inputs.size(), "fccl ", api, ": ", outputs.size(), " outputs for ",
                    inputs.size(), " inputs");
  std::vector<Op> ops;
  for (size_t i = 0; i < inputs.size(); ++i) ops.push_back(allgatherBaseOp(this, outputs[i], inputs[i], api));
  return enqueue(OpType::ALLGATHER_INTO_TENSOR_COALESCED, "fccl:all_gather_into_tensor_coalesced", outputs,
                 inputs, combine(this, std::move(ops)));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::allgather_coalesced(
    std::vector<std::vector<at::Tensor>>& outputLists, std::vector<at::Tensor>& inputs,
    const c10d::AllgatherOptions& /*opts*/) {
  // outputLists[r][j] receives rank r's inputs[j].
  const char* api = "allgather_coalesced";
  TORCH_CHECK_VALUE(static_cast<int>(outputLists.size()) == size_, "fccl ", api, ": expects ", size_,
                    " output lists (one per rank), got ", outputLists.size());
  std::vector<at::Tensor> allOutputs;
  for (const auto& list : outputLists) {
    TORCH_CHECK_VALUE(list.size() == inputs.size(), "fccl ", api, ": an output list has ", list.size(),
                      " tensors for ", inputs.size(), " inputs");
    for (size_t j = 0; j < list.size(); ++j) {
      checkTensor(list[j], api);
      checkSameKind(list[j], inputs[j], api);
      TORCH_CHECK_VALUE(list[j].numel() == inputs[j].numel(), "fccl ", api, ": output and input ", j,
                        " differ in size");
      allOutputs.push_back(list[j]);
    }
  }
  std::vector<Op> ops;
  for (size_t j = 0; j < inputs.size(); ++j) {
    at::Tensor in = inputs[j];
    checkContiguous(in, api);
    auto stage = std::make_shared<at::Tensor>();
    Op op;
    op.issue = [this, in, stage, api] {
      *stage = at::empty({size_, in.numel()}, in.options());
      Buf b = moveBuf(in);
      check(fcclAllGather(b.ptr, stage->data_ptr(), b.count, b.type, comm(), nullptr), api);
    };
    op.finish = [outputLists, j, stage] {
      for (size_t r = 0; r < outputLists.size(); ++r)
        outputLists[r][j].copy_((*stage)[r].view(outputLists[r][j].sizes()));
    };
    ops.push_back(std::move(op));
  }
  return enqueue(OpType::ALLGATHER_COALESCED, "fccl:all_gather_coalesced", allOutputs, inputs,
                 combine(this, std::move(ops)));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::gather(std::vector<std::vector<at::Tensor>>& outputs,
                                                   std::vector<at::Tensor>& inputs,
                                                   const c10d::GatherOptions& opts) {
  const char* api = "gather";
  checkOne(inputs, api);
  checkRoot(this, opts.rootRank, api);
  const int root = static_cast<int>(opts.rootRank);
  at::Tensor in = inputs[0];
  checkContiguous(in, api);
  std::vector<at::Tensor> outs;
  if (rank_ == root) {
    TORCH_CHECK_VALUE(outputs.size() == 1 && static_cast<int>(outputs[0].size()) == size_, "fccl ", api,
                      ": the root expects one list of ", size_, " output tensors");
    outs = outputs[0];
    for (const at::Tensor& o : outs) {
      checkTensor(o, api);
      checkSameKind(o, in, api);
      TORCH_CHECK_VALUE(o.numel() == in.numel(), "fccl ", api, ": an output tensor has ", o.numel(),
                        " elements, the input ", in.numel());
    }
  } else {
    TORCH_CHECK_VALUE(outputs.empty() || (outputs.size() == 1 && outputs[0].empty()), "fccl ", api,
                      ": only the root takes output tensors");
  }
  auto stages = std::make_shared<std::vector<at::Tensor>>();
  Op op;
  op.issue = [this, in, outs, root, stages, api] {
    if (rank_ != root) {
      Buf b = moveBuf(in);
      check(fcclSend(b.ptr, b.count, b.type, root, comm(), nullptr), api);
      return;
    }
    check(fcclGroupStart(), "fcclGroupStart");
    fcclResult_t r = fcclSuccess;
    for (int p = 0; p < size_ && r == fcclSuccess; ++p) {
      at::Tensor dst = outs[p].is_contiguous() ? outs[p] : at::empty_like(in);
      stages->push_back(dst);
      if (p == root) continue;
      Buf b = moveBuf(dst);
      r = fcclRecv(b.ptr, b.count, b.type, p, comm(), nullptr);
    }
    fcclResult_t end = fcclGroupEnd();
    check(r != fcclSuccess ? r : end, api);
  };
  op.finish = [this, in, outs, root, stages] {
    if (rank_ != root) return;
    for (int p = 0; p < size_; ++p) {
      if (p == root) {
        outs[p].copy_(in.view(outs[p].sizes()));
      } else if (!(*stages)[p].is_same(outs[p])) {
        outs[p].copy_((*stages)[p].view(outs[p].sizes()));
      }
    }
  };
  return enqueue(OpType::GATHER, "fccl:gather", outs, {in}, std::move(op));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::scatter(std::vector<at::Tensor>& outputs,
                                                    std::vector<std::vector<at::Tensor>>& inputs,
                                                    const c10d::ScatterOptions& opts) {
  const char* api = "scatter";
  checkOne(outputs, api);
  checkRoot(this, opts.rootRank, api);
  const int root = static_cast<int>(opts.rootRank);
  at::Tensor out = outputs[0];
  checkTensor(out, api);
  std::vector<at::Tensor> ins;
  if (rank_ == root) {
    TORCH_CHECK_VALUE(inputs.size() == 1 && static_cast<int>(inputs[0].size()) == size_, "fccl ", api,
                      ": the root expects one list of ", size_, " input tensors");
    ins = inputs[0];
    for (const at::Tensor& i : ins) {
      checkTensor(i, api);
      checkSameKind(i, out, api);
      TORCH_CHECK_VALUE(i.numel() == out.numel(), "fccl ", api, ": an input tensor has ", i.numel(),
                        " elements, the output ", out.numel());
    }
  } else {
    TORCH_CHECK_VALUE(inputs.empty() || (inputs.size() == 1 && inputs[0].empty()), "fccl ", api,
                      ": only the root takes input tensors");
  }
  auto stage = std::make_shared<at::Tensor>();
  Op op;
  op.issue = [this, out, ins, root, stage, api] {
    if (rank_ != root) {
      *stage = out.is_contiguous() ? out : at::empty_like(out, at::MemoryFormat::Contiguous);
      Buf b = moveBuf(*stage);
      check(fcclRecv(b.ptr, b.count, b.type, root, comm(), nullptr), api);
      return;
    }
    std::vector<at::Tensor> srcs;
    for (const at::Tensor& i : ins) srcs.push_back(i.contiguous());
    check(fcclGroupStart(), "fcclGroupStart");
    fcclResult_t r = fcclSuccess;
    for (int p = 0; p < size_ && r == fcclSuccess; ++p) {
      if (p == root) continue;
      Buf b = moveBuf(srcs[p]);
      r = fcclSend(b.ptr, b.count, b.type, p, comm(), nullptr);
    }
    fcclResult_t end = fcclGroupEnd();
    check(r != fcclSuccess ? r : end, api);
  };
  op.finish = [this, out, ins, root, stage] {
    if (rank_ == root) {
      out.copy_(ins[root].view(out.sizes()));
    } else if (!stage->is_same(out)) {
      out.copy_(*stage);
    }
  };
  return enqueue(OpType::SCATTER, "fccl:scatter", {out}, ins, std::move(op));
}

namespace {

// Reduce-scatter of `in` (nranks blocks of out.numel()) into `out`, natively or through an
// allreduce of a copy of `in` (the fallback). Both contiguous, same dtype.
Op reduceScatterOp(FcclBackend* b, const at::Tensor& out, const at::Tensor& in, const c10d::ReduceOp& rop,
                   const char* api) {
  Reduction r = resolveReduction(out, rop, api);
  Op op;
  if (!r.native) {
    op.groupable = false;
    op.issue = [b, out, in, r, rop, api] {
      at::Tensor reduced = reduceLocally(gatherAll(b, in, api), rop, r);
      flat(out).copy_(reduced.narrow(0, b->getRank() * out.numel(), out.numel()));
    };
    return op;
  }
  const bool complex = at::isComplexType(out.scalar_type());
  at::Tensor outView = complex ? at::view_as_real(out) : out;
  at::Tensor inView = complex ? at::view_as_real(in) : in;
  const bool inPlace = static_cast<const char*>(out.data_ptr()) ==
                       static_cast<const char*>(in.data_ptr()) + b->getRank() * out.nbytes();
  const bool stage = overlaps(in, out) && !inPlace;
  op.groupable = !r.premul;
  op.issue = [b, outView, inView, r, stage, api] {
    at::Tensor src = stage ? inView.clone() : inView;
    withRedOp(b, r, [&](fcclRedOp_t o) {
      b->check(fcclReduceScatter(src.data_ptr(), outView.data_ptr(), outView.numel(), r.type, o, b->comm(),
                                 nullptr),
               api);
    });
  };
  return op;
}

void checkReduceScatterBase(FcclBackend* b, const at::Tensor& out, const at::Tensor& in, const char* api) {
  checkContiguous(out, api);
  checkContiguous(in, api);
  checkSameKind(out, in, api);
  TORCH_CHECK_VALUE(in.numel() == out.numel() * b->getSize(), "fccl ", api, ": input has ", in.numel(),
                    " elements, expected ", b->getSize(), " x ", out.numel());
}

}  // namespace

c10::intrusive_ptr<c10d::Work> FcclBackend::reduce_scatter(std::vector<at::Tensor>& outputs,
                                                           std::vector<std::vector<at::Tensor>>& inputs,
                                                           const c10d::ReduceScatterOptions& opts) {
  const char* api = "reduce_scatter";
  checkOne(outputs, api);
  TORCH_CHECK_VALUE(inputs.size() == 1 && static_cast<int>(inputs[0].size()) == size_, "fccl ", api,
                    ": expects one list of ", size_, " input tensors");
  at::Tensor out = outputs[0];
  checkTensor(out, api);
  std::vector<at::Tensor> ins = inputs[0];
  for (const at::Tensor& i : ins) {
    checkTensor(i, api);
    checkSameKind(i, out, api);
    TORCH_CHECK_VALUE(i.numel() == out.numel(), "fccl ", api, ": an input tensor has ", i.numel(),
                      " elements, the output ", out.numel());
  }
  // The list becomes one buffer of nranks blocks; the output is staged when not contiguous.
  at::Tensor stageIn =
      at::empty({size_ * out.numel()}, out.options().memory_format(at::MemoryFormat::Contiguous));
  at::Tensor stageOut = out.is_contiguous() ? out : at::empty_like(out, at::MemoryFormat::Contiguous);
  Op inner = reduceScatterOp(this, stageOut, stageIn, opts.reduceOp, api);
  Op op;
  op.groupable = inner.groupable;
  op.issue = [ins, stageIn, inner] {
    for (size_t p = 0; p < ins.size(); ++p)
      stageIn.narrow(0, p * ins[p].numel(), ins[p].numel()).view(ins[p].sizes()).copy_(ins[p]);
    inner.issue();
  };
  op.finish = [out, stageOut] {
    if (!stageOut.is_same(out)) out.copy_(stageOut);
  };
  return enqueue(OpType::REDUCE_SCATTER, "fccl:reduce_scatter", {out}, ins, std::move(op));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::_reduce_scatter_base(at::Tensor& output, at::Tensor& input,
                                                                 const c10d::ReduceScatterOptions& opts) {
  const char* api = "reduce_scatter_tensor";
  checkReduceScatterBase(this, output, input, api);
  return enqueue(OpType::_REDUCE_SCATTER_BASE, "fccl:_reduce_scatter_base", {output}, {input},
                 reduceScatterOp(this, output, input, opts.reduceOp, api));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::reduce_scatter_tensor_coalesced(
    std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
    const c10d::ReduceScatterOptions& opts) {
  const char* api = "reduce_scatter_tensor_coalesced";
  TORCH_CHECK_VALUE(outputs.size() == inputs.size(), "fccl ", api, ": ", outputs.size(), " outputs for ",
                    inputs.size(), " inputs");
  std::vector<Op> ops;
  for (size_t i = 0; i < inputs.size(); ++i) {
    checkReduceScatterBase(this, outputs[i], inputs[i], api);
    ops.push_back(reduceScatterOp(this, outputs[i], inputs[i], opts.reduceOp, api));
  }
  return enqueue(OpType::REDUCE_SCATTER_TENSOR_COALESCED, "fccl:reduce_scatter_tensor_coalesced", outputs,
                 inputs, combine(this, std::move(ops)));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::alltoall_base(at::Tensor& output, at::Tensor& input,
                                                          std::vector<int64_t>& outputSplits,
                                                          std::vector<int64_t>& inputSplits,
                                                          const c10d::AllToAllOptions& /*opts*/) {
  const char* api = "all_to_all_single";
  checkContiguous(output, api);
  checkContiguous(input, api);
  checkSameKind(output, input, api);
  at::Tensor out = output, in = input;
  const bool stage = overlaps(in, out);
  Op op;
  if (outputSplits.empty() && inputSplits.empty()) {
    TORCH_CHECK_VALUE(in.numel() % size_ == 0 && out.numel() == in.numel(), "fccl ", api, ": input (",
                      in.numel(), " elements) and output (", out.numel(), ") must be equal and divisible by ",
                      size_);
    op.issue = [this, out, in, stage, api] {
      at::Tensor src = stage ? in.clone() : in;
      Buf b = moveBuf(src);
      check(fcclAlltoAll(b.ptr, out.data_ptr(), b.count / size_, b.type, comm(), nullptr), api);
    };
    return enqueue(OpType::ALLTOALL_BASE, "fccl:all_to_all", {out}, {in}, std::move(op));
  }
  // Uneven splits along dim 0: a group of sends and receives, one pair per peer.
  auto splitsOrEven = [&](std::vector<int64_t> s, const at::Tensor& t, const char* which) {
    const int64_t rows = t.dim() == 0 ? 1 : t.size(0);
    if (s.empty()) {
      TORCH_CHECK_VALUE(rows % size_ == 0, "fccl ", api, ": ", which, " has ", rows,
                        " rows, not divisible by ", size_);
      s.assign(size_, rows / size_);
    }
    TORCH_CHECK_VALUE(static_cast<int>(s.size()) == size_, "fccl ", api, ": ", which, " splits have ",
                      s.size(), " entries for ", size_, " ranks");
    for (int64_t v : s) TORCH_CHECK_VALUE(v >= 0, "fccl ", api, ": negative split in ", which);
    TORCH_CHECK_VALUE(std::accumulate(s.begin(), s.end(), int64_t{0}) == rows, "fccl ", api, ": ", which,
                      " splits sum to ", std::accumulate(s.begin(), s.end(), int64_t{0}), ", not its ", rows,
                      " rows");
    return s;
  };
  std::vector<int64_t> inSplits = splitsOrEven(inputSplits, in, "input");
  std::vector<int64_t> outSplits = splitsOrEven(outputSplits, out, "output");
  const int64_t inRow = in.dim() == 0 || in.size(0) == 0 ? 0 : in.numel() / in.size(0);
  const int64_t outRow = out.dim() == 0 || out.size(0) == 0 ? 0 : out.numel() / out.size(0);
  op.issue = [this, out, in, stage, inSplits, outSplits, inRow, outRow, api] {
    at::Tensor src = stage ? in.clone() : in;
    at::Tensor srcFlat = src.reshape(-1), dstFlat = out.view(-1);
    int64_t inOff = 0, outOff = 0;
    std::vector<int64_t> inOffs(size_), outOffs(size_);
    for (int p = 0; p < size_; ++p) {
      inOffs[p] = inOff;
      outOffs[p] = outOff;
      inOff += inSplits[p] * inRow;
      outOff += outSplits[p] * outRow;
    }
    dstFlat.narrow(0, outOffs[rank_], outSplits[rank_] * outRow)
        .copy_(srcFlat.narrow(0, inOffs[rank_], inSplits[rank_] * inRow));
    check(fcclGroupStart(), "fcclGroupStart");
    fcclResult_t r = fcclSuccess;
    for (int p = 0; p < size_ && r == fcclSuccess; ++p) {
      if (p == rank_) continue;
      if (inSplits[p] > 0) {
        Buf b = moveBuf(srcFlat.narrow(0, inOffs[p], inSplits[p] * inRow));
        r = fcclSend(b.ptr, b.count, b.type, p, comm(), nullptr);
      }
      if (r == fcclSuccess && outSplits[p] > 0) {
        Buf b = moveBuf(dstFlat.narrow(0, outOffs[p], outSplits[p] * outRow));
        r = fcclRecv(b.ptr, b.count, b.type, p, comm(), nullptr);
      }
    }
    fcclResult_t end = fcclGroupEnd();
    check(r != fcclSuccess ? r : end, api);
  };
  return enqueue(OpType::ALLTOALL_BASE, "fccl:all_to_all", {out}, {in}, std::move(op));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::alltoall(std::vector<at::Tensor>& outputs,
                                                     std::vector<at::Tensor>& inputs,
                                                     const c10d::AllToAllOptions& /*opts*/) {
  const char* api = "all_to_all";
  TORCH_CHECK_VALUE(static_cast<int>(outputs.size()) == size_ && static_cast<int>(inputs.size()) == size_,
                    "fccl ", api, ": expects ", size_, " input and output tensors, got ", inputs.size(),
                    " and ", outputs.size());
  for (int p = 0; p < size_; ++p) {
    checkTensor(outputs[p], api);
    checkTensor(inputs[p], api);
    checkSameKind(outputs[p], inputs[p], api);
  }
  auto stages = std::make_shared<std::vector<at::Tensor>>();
  Op op;
  op.issue = [this, outputs, inputs, stages, api] {
    std::vector<at::Tensor> srcs;
    for (const at::Tensor& i : inputs) srcs.push_back(i.contiguous());
    for (const at::Tensor& o : outputs) stages->push_back(o.is_contiguous() ? o : at::empty_like(o));
    (*stages)[rank_].copy_(srcs[rank_].view((*stages)[rank_].sizes()));
    check(fcclGroupStart(), "fcclGroupStart");
    fcclResult_t r = fcclSuccess;
    for (int p = 0; p < size_ && r == fcclSuccess; ++p) {
      if (p == rank_) continue;
      Buf s = moveBuf(srcs[p]), d = moveBuf((*stages)[p]);
      if (s.count > 0) r = fcclSend(s.ptr, s.count, s.type, p, comm(), nullptr);
      if (r == fcclSuccess && d.count > 0) r = fcclRecv(d.ptr, d.count, d.type, p, comm(), nullptr);
    }
    fcclResult_t end = fcclGroupEnd();
    check(r != fcclSuccess ? r : end, api);
  };
  op.finish = [outputs, stages] {
    for (size_t p = 0; p < outputs.size(); ++p) {
      if (!(*stages)[p].is_same(outputs[p])) outputs[p].copy_((*stages)[p]);
    }
  };
  return enqueue(OpType::ALLTOALL, "fccl:all_to_all", outputs, inputs, std::move(op));
}

// Tags: fccl matches a send with the receive of the same pair in call order; c10d's tag is not
// carried (the order of calls between a pair must agree, as with NCCL).
c10::intrusive_ptr<c10d::Work> FcclBackend::send(std::vector<at::Tensor>& tensors, int dstRank, int /*tag*/) {
  const char* api = "send";
  checkOne(tensors, api);
  checkContiguous(tensors[0], api);
  TORCH_CHECK_VALUE(dstRank >= 0 && dstRank < size_ && dstRank != rank_, "fccl ", api, ": destination rank ",
                    dstRank, " is not another rank of this group (size ", size_, ", rank ", rank_, ")");
  at::Tensor t = tensors[0];
  Op op;
  op.issue = [this, t, dstRank, api] {
    Buf b = moveBuf(t);
    check(fcclSend(b.ptr, b.count, b.type, dstRank, comm(), nullptr), api);
  };
  return enqueue(OpType::SEND, "fccl:send", {t}, {t}, std::move(op));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::recv(std::vector<at::Tensor>& tensors, int srcRank, int /*tag*/) {
  const char* api = "recv";
  checkOne(tensors, api);
  checkContiguous(tensors[0], api);
  TORCH_CHECK_VALUE(srcRank >= 0 && srcRank < size_ && srcRank != rank_, "fccl ", api, ": source rank ",
                    srcRank, " is not another rank of this group (size ", size_, ", rank ", rank_, ")");
  at::Tensor t = tensors[0];
  Op op;
  op.issue = [this, t, srcRank, api] {
    Buf b = moveBuf(t);
    check(fcclRecv(b.ptr, b.count, b.type, srcRank, comm(), nullptr), api);
  };
  return enqueue(OpType::RECV, "fccl:recv", {t}, {t}, std::move(op));
}

c10::intrusive_ptr<c10d::Work> FcclBackend::barrier(const c10d::BarrierOptions& /*opts*/) {
  // A one-byte allreduce: it completes on a rank only once every rank has reached it, and the
  // queue's order puts it after everything issued before.
  at::Tensor t = at::zeros({1}, at::kByte);
  Op op;
  op.issue = [this, t] {
    check(fcclAllReduce(t.data_ptr(), t.data_ptr(), 1, fcclUint8, fcclMax, comm(), nullptr), "barrier");
  };
  return enqueue(OpType::BARRIER, "fccl:barrier", {}, {t}, std::move(op));
}

}  // namespace fccl_torch
