// program.h - a fused fccl program for Python (fccl.Program, fccl.optim): created from text,
// compiled for one process group's communicator, launched on that group's worker so it runs in
// order with the group's collectives. A launch keeps the program and its tensors alive until it
// completes. Errors: a program the checker rejects raises ProgramError with fccl's log (one
// "file:line:col: message" per line); a failed compile or launch raises with fccl's sentence.
#pragma once

#include <ATen/ATen.h>
#include <fccl.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend.h"

namespace fccl_torch {

// Raised for a program the parser, checker or compiler rejects; what() is fccl's log.
class ProgramError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Program : public std::enable_shared_from_this<Program> {
 public:
  Program(const std::string& text, const std::string& name);
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  // fcclProgramCompile on backend's communicator (schedule "" is the default pipeline).
  void compile(const c10::intrusive_ptr<FcclBackend>& backend, const std::string& schedule);
  // Queues fcclProgramLaunch behind the group's collectives. tensors[i] is bound to names[i]
  // with logical element count counts[i]; results (float64, may be undefined) receives the
  // program's scalar results in declaration order.
  c10::intrusive_ptr<c10d::Work> launch(const std::vector<std::string>& names,
                                        const std::vector<at::Tensor>& tensors,
                                        const std::vector<int64_t>& counts,
                                        const std::vector<std::string>& scalarNames,
                                        const std::vector<double>& scalarValues, const at::Tensor& results);
  std::string dump(const std::string& stage);
  std::string log();
  bool compiled() const { return backend_.defined(); }

 private:
  // Runs fn where calls on the program are safe: on the compiled group's worker (behind any
  // launch in flight), or here before compilation.
  void onOwner(const std::function<void()>& fn);

  fcclProgram_t program_ = nullptr;
  std::string name_;
  c10::intrusive_ptr<FcclBackend> backend_;
};

}  // namespace fccl_torch
