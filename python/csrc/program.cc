// program.cc - fused programs for Python (program.h).
#include "program.h"

#include <c10/util/Exception.h>

namespace fccl_torch {

namespace {

std::string programLog(fcclProgram_t p) {
  const char* log = nullptr;
  if (p == nullptr || fcclProgramGetLog(p, &log) != fcclSuccess || log == nullptr) return "";
  return log;
}

}  // namespace

Program::Program(const std::string& text, const std::string& name) : name_(name) {
  fcclResult_t r = fcclProgramCreate(&program_, text.c_str(), name.empty() ? nullptr : name.c_str());
  if (r != fcclSuccess) {
    std::string log = programLog(program_);
    if (log.empty()) log = fcclGetLastError(nullptr);
    if (program_ != nullptr) fcclProgramDestroy(program_);
    program_ = nullptr;
    throw ProgramError(log);
  }
}

Program::~Program() {
  if (program_ != nullptr) fcclProgramDestroy(program_);
}

void Program::onOwner(const std::function<void()>& fn) {
  if (backend_.defined()) {
    backend_->runSync(fn);
  } else {
    fn();
  }
}

void Program::compile(const c10::intrusive_ptr<FcclBackend>& backend, const std::string& schedule) {
  TORCH_CHECK(backend.defined(), "fccl.Program.compile: no fccl process group");
  auto compileOn = [&] {
    fcclProgramOptions_t options = FCCL_PROGRAM_OPTIONS_INITIALIZER;
    options.schedule = schedule.empty() ? nullptr : schedule.c_str();
    fcclResult_t r = fcclProgramCompile(program_, backend->comm(), &options);
    if (r != fcclSuccess) {
      std::string log = programLog(program_);
      if (log.empty()) log = fcclGetLastError(backend->comm());
      throw ProgramError(log);
    }
  };
  // Behind whatever the old group still runs with this program, then on the new group's worker.
  if (backend_.defined() && backend_.get() != backend.get()) backend_->runSync([] {});
  backend->runSync(compileOn);
  backend_ = backend;
}

c10::intrusive_ptr<c10d::Work> Program::launch(const std::vector<std::string>& names,
                                               const std::vector<at::Tensor>& tensors,
                                               const std::vector<int64_t>& counts,
                                               const std::vector<std::string>& scalarNames,
                                               const std::vector<double>& scalarValues,
                                               const at::Tensor& results) {
  TORCH_CHECK(backend_.defined(), "fccl.Program.launch: compile the program for a process group first");
  TORCH_CHECK(names.size() == tensors.size() && names.size() == counts.size(),
              "fccl.Program.launch: names, tensors and counts differ in length");
  TORCH_CHECK(scalarNames.size() == scalarValues.size(),
              "fccl.Program.launch: scalar names and values differ");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    TORCH_CHECK(t.device().is_cpu(), "fccl.Program.launch: tensor '", names[i], "' is on ", t.device(),
                ": this build of fccl runs CPU tensors");
    TORCH_CHECK(t.is_contiguous(), "fccl.Program.launch: tensor '", names[i], "' must be contiguous");
    TORCH_CHECK(counts[i] >= 0, "fccl.Program.launch: negative count for '", names[i], "'");
  }
  if (results.defined()) {
    TORCH_CHECK(results.device().is_cpu() && results.scalar_type() == at::kDouble && results.is_contiguous(),
                "fccl.Program.launch: results must be a contiguous CPU float64 tensor");
  }
  auto self = shared_from_this();
  c10::intrusive_ptr<FcclBackend> backend = backend_;
  Op op;
  op.groupable = false;  // a launch reads scalar results itself; it runs alone
  op.issue = [self, backend, names, tensors, counts, scalarNames, scalarValues, results] {
    std::vector<fcclTensorBinding_t> tb(names.size());
    for (size_t i = 0; i < names.size(); ++i)
      tb[i] = {names[i].c_str(), tensors[i].data_ptr(), static_cast<size_t>(counts[i])};
    std::vector<fcclScalarBinding_t> sb(scalarNames.size());
    for (size_t i = 0; i < scalarNames.size(); ++i) sb[i] = {scalarNames[i].c_str(), scalarValues[i]};
    double* out = results.defined() && results.numel() > 0 ? results.data_ptr<double>() : nullptr;
    backend->check(fcclProgramLaunch(self->program_, tb.data(), static_cast<int>(tb.size()), sb.data(),
                                     static_cast<int>(sb.size()), out, backend->comm(), nullptr),
                   ("launch of program " + self->name_).c_str());
  };
  std::vector<at::Tensor> outputs = tensors;
  if (results.defined()) outputs.push_back(results);
  return backend_->enqueue(c10d::OpType::UNKNOWN, "fccl:program", outputs, tensors, std::move(op));
}

std::string Program::dump(const std::string& stage) {
  std::string text;
  onOwner([&] {
    const char* t = nullptr;
    fcclResult_t r = fcclProgramDump(program_, stage.c_str(), &t);
    TORCH_CHECK_VALUE(r == fcclSuccess, "fccl.Program.dump: ", fcclGetLastError(nullptr));
    text = t != nullptr ? t : "";
  });
  return text;
}

std::string Program::log() {
  std::string text;
  onOwner([&] { text = programLog(program_); });
  return text;
}

}  // namespace fccl_torch
