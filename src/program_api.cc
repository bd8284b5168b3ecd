// program_api.cc - the fcclProgram* C API: create (parse + check), the stock programs by name,
// compile (passes + lowering + the steps' kernels, for one communicator), dump, launch, destroy.
// Diagnostics and dumps live on the program object; a failure also sets fcclGetLastError's
// sentence.
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "fusion/check/checker.h"
#include "fusion/ir/printer.h"
#include "fusion/parse/parser.h"
#include "fusion/passes/lower.h"
#include "fusion/passes/registry.h"
#include "fusion/stock/stock.h"
#include "src/argcheck.h"
#include "src/base/checks.h"
#include "src/base/error.h"
#include "src/comm.h"
#include "src/enqueue.h"
#include "src/program_runtime.h"

struct fcclProgram {
  std::string name;
  std::string log;
  std::optional<fccl::ir::Program> checked;
  std::vector<std::pair<std::string, std::string>> dumps;  // (stage, printed IR), in order
  std::unique_ptr<fccl::fusion::Runtime> runtime;
  fcclComm* comm = nullptr;  // the communicator it was compiled for
  std::string text;          // storage for fcclProgramDump / GetLog results
};

using namespace fccl;

extern "C" {

FCCL_API fcclResult_t fcclProgramCreate(fcclProgram_t* program, const char* source, const char* name) {
  if (program == nullptr) return setError(fcclInvalidArgument, "fcclProgramCreate: program is NULL");
  *program = nullptr;
  if (source == nullptr) return setError(fcclInvalidArgument, "fcclProgramCreate: source is NULL");
  try {
    auto p = std::make_unique<fcclProgram>();
    p->name = name ? name : "<string>";
    ir::Diagnostics diags(p->name);
    std::optional<ir::Program> parsed = ir::parse::parseProgram(source, diags);
    if (parsed) {
      parsed->source = p->name;
      p->dumps.push_back({"parse", ir::print(*parsed)});
      p->checked = ir::check::check(*parsed, diags);
      if (p->checked) p->dumps.push_back({"check", ir::print(*p->checked, ir::PrintOptions{true})});
    }
    p->log = diags.str();
    *program = p.release();
    if (!(*program)->checked) {
      std::string first = (*program)->log.substr(0, (*program)->log.find('\n'));
      return setError(fcclInvalidArgument, "fcclProgramCreate: %s (and %zu more; see fcclProgramGetLog)",
                      first.c_str(), diags.count() > 0 ? diags.count() - 1 : 0);
    }
    return fcclSuccess;
  } catch (const std::bad_alloc&) {
    return setError(fcclSystemError, "fcclProgramCreate: out of memory");
  } catch (...) {
    return setError(fcclInternalError, "fcclProgramCreate: unexpected internal exception");
  }
}

FCCL_API fcclResult_t fcclProgramGetStock(const char* name, const char** text) {
  if (name == nullptr || text == nullptr)
    return setError(fcclInvalidArgument, "fcclProgramGetStock: %s is NULL",
                    name == nullptr ? "name" : "text");
  *text = fusion::stock::find(name);
  if (*text != nullptr) return fcclSuccess;
  try {
    std::string known;
    for (const std::string& n : fusion::stock::names()) known += (known.empty() ? "" : ", ") + n;
    return setError(fcclInvalidArgument, "fcclProgramGetStock: no stock program named '%s' (there are: %s)",
                    name, known.c_str());
  } catch (...) {
    return setError(fcclInvalidArgument, "fcclProgramGetStock: no stock program named '%s'", name);
  }
}

FCCL_API fcclResult_t fcclProgramCompile(fcclProgram_t program, fcclComm_t comm,
                                         const fcclProgramOptions_t* options) {
  if (program == nullptr) return setError(fcclInvalidArgument, "fcclProgramCompile: program is NULL");
  FCCL_CHECK(checkComm("fcclProgramCompile", comm));
  if (!program->checked)
    return setError(fcclInvalidUsage, "fcclProgramCompile: program %s has errors (fcclProgramGetLog)",
                    program->name.c_str());
  if (options != nullptr && (options->magic != FCCL_PROGRAM_OPTIONS_MAGIC || options->size < sizeof(size_t)))
    return setError(fcclInvalidArgument,
                    "fcclProgramCompile: options were not initialized with FCCL_PROGRAM_OPTIONS_INITIALIZER");
  try {
    // One schedule grammar for the C API and fcclc (passes::parsePipeline): NULL, "" and
    // "default" are the default pipeline, "none" no passes, else a comma list of pass names.
    std::vector<std::string> pipeline;
    std::string error;
    const char* spec = options != nullptr && options->schedule != nullptr ? options->schedule : "default";
    if (!fusion::passes::parsePipeline(spec, &pipeline, &error)) {
      program->log = error + "\n";
      return setError(fcclInvalidArgument, "fcclProgramCompile: %s: %s", program->name.c_str(),
                      error.c_str());
    }
    fusion::Schedule schedule;
    std::vector<std::string> dumps;
    // Keep parse/check dumps, replace those of any earlier compile.
    while (program->dumps.size() > 2) program->dumps.pop_back();
    if (!fusion::lower(*program->checked, pipeline, &schedule, &dumps, &error)) {
      program->log = error + "\n";
      return setError(fcclInvalidArgument, "fcclProgramCompile: %s: %s", program->name.c_str(),
                      error.c_str());
    }
    for (size_t i = 0; i < dumps.size() && i < pipeline.size(); ++i)
      program->dumps.push_back({pipeline[i], dumps[i]});
    program->dumps.push_back({"schedule", fusion::printSchedule(schedule)});
    std::unique_ptr<fusion::Runtime> rt;
    if (!fusion::Runtime::create(std::move(schedule), &rt, &error)) {
      program->log = error + "\n";
      return setError(fcclInternalError, "fcclProgramCompile: %s: %s", program->name.c_str(), error.c_str());
    }
    program->runtime = std::move(rt);
    program->comm = comm;
    program->log.clear();
    FCCL_INFO(kLogFusion, "program %s compiled for comm %p (%d ranks): %zu steps", program->name.c_str(),
              (void*)comm, comm->nranks, program->runtime->schedule().steps.size());
    return fcclSuccess;
  } catch (const std::bad_alloc&) {
    return setError(fcclSystemError, "fcclProgramCompile: out of memory");
  } catch (...) {
    return setError(fcclInternalError, "fcclProgramCompile: unexpected internal exception");
  }
}

FCCL_API fcclResult_t fcclProgramGetLog(fcclProgram_t program, const char** log) {
  if (program == nullptr || log == nullptr)
    return setError(fcclInvalidArgument, "fcclProgramGetLog: %s is NULL", program ? "log" : "program");
  *log = program->log.c_str();
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclProgramDump(fcclProgram_t program, const char* stage, const char** text) {
  if (program == nullptr || stage == nullptr || text == nullptr)
    return setError(fcclInvalidArgument, "fcclProgramDump: %s is NULL",
                    program == nullptr ? "program"
                    : stage == nullptr ? "stage"
                                       : "text");
  std::string known;
  for (auto& [name, printed] : program->dumps) {
    if (name == stage) {
      *text = printed.c_str();
      return fcclSuccess;
    }
    known += (known.empty() ? "" : ", ") + name;
  }
  return setError(fcclInvalidArgument, "fcclProgramDump: program %s has no stage '%s' (it has: %s)",
                  program->name.c_str(), stage, known.c_str());
}

FCCL_API fcclResult_t fcclProgramLaunch(fcclProgram_t program, const fcclTensorBinding_t* tensors,
                                        int ntensors, const fcclScalarBinding_t* scalars, int nscalars,
                                        double* scalarResults, fcclComm_t comm, fcclStream_t stream) {
  if (program == nullptr) return setError(fcclInvalidArgument, "fcclProgramLaunch: program is NULL");
  FCCL_CHECK(checkComm("fcclProgramLaunch", comm));
  logSetRank(comm->rank);
  FCCL_CHECK(commCheckUsable(comm, "fcclProgramLaunch"));
  // A device communicator's launch enqueues its kernels on `stream` (src/cuda/program_device.cc,
  // which checks it); a host communicator's steps run on this thread.
  if (stream != nullptr && comm->cudaDev < 0)
    return setError(fcclInvalidArgument, "fcclProgramLaunch: rank %d: stream must be NULL for host buffers",
                    comm->rank);
  if (!program->runtime)
    return setError(fcclInvalidUsage, "fcclProgramLaunch: program %s was not compiled (fcclProgramCompile)",
                    program->name.c_str());
  if (program->comm != comm)
    return setError(fcclInvalidUsage,
                    "fcclProgramLaunch: rank %d: program %s was compiled for another communicator",
                    comm->rank, program->name.c_str());
  if ((ntensors > 0 && tensors == nullptr) || ntensors < 0 || (nscalars > 0 && scalars == nullptr) ||
      nscalars < 0)
    return setError(fcclInvalidArgument, "fcclProgramLaunch: rank %d: binding arrays and counts disagree",
                    comm->rank);
  // Inside a group the launch runs at fcclGroupEnd, in call order with the group's other calls
  // on this communicator; it keeps copies of the binding arrays (names included), as NCCL
  // keeps a call's arguments: the buffers they point to must stay valid until then.
  struct Args {
    std::vector<std::string> names;
    std::vector<fcclTensorBinding_t> tensors;
    std::vector<fcclScalarBinding_t> scalars;
  };
  auto args = std::make_shared<Args>();
  try {
    args->names.reserve(size_t(ntensors + nscalars));
    for (int i = 0; i < ntensors; ++i) {
      args->names.emplace_back(tensors[i].name != nullptr ? tensors[i].name : "");
      args->tensors.push_back(tensors[i]);
    }
    for (int i = 0; i < nscalars; ++i) {
      args->names.emplace_back(scalars[i].name != nullptr ? scalars[i].name : "");
      args->scalars.push_back(scalars[i]);
    }
    // Names point into the copies (reserved above: no reallocation moved them); NULL stays NULL.
    for (int i = 0; i < ntensors; ++i)
      if (tensors[i].name != nullptr) args->tensors[size_t(i)].name = args->names[size_t(i)].c_str();
    for (int i = 0; i < nscalars; ++i)
      if (scalars[i].name != nullptr)
        args->scalars[size_t(i)].name = args->names[size_t(ntensors + i)].c_str();
  } catch (const std::bad_alloc&) {
    return setError(fcclSystemError, "fcclProgramLaunch: out of memory");
  }
  return enqueueCall(comm, [program, comm, args, scalarResults, stream] {
    // The whole launch is one active call (as each collective is, src/executor.cc): fcclCommAbort
    // from another thread must not free the communicator between the program's collectives or
    // while the launch unwinds (ThreadSanitizer: Runtime::launch's ProgramMark wrote to a comm
    // that fcclCommAbort had just deleted, once the aborted collective had left).
    struct ActiveCall {
      fcclComm* comm;
      ~ActiveCall() { comm->activeCalls.fetch_sub(1); }
    };
    comm->activeCalls.fetch_add(1);
    ActiveCall active{comm};
    try {
      return program->runtime->launch(comm, args->tensors.data(), int(args->tensors.size()),
                                      args->scalars.data(), int(args->scalars.size()), scalarResults, stream);
    } catch (const std::bad_alloc&) {
      return setError(fcclSystemError, "fcclProgramLaunch: out of memory");
    } catch (...) {
      return setError(fcclInternalError, "fcclProgramLaunch: unexpected internal exception");
    }
  });
}

FCCL_API fcclResult_t fcclSliceRange(fcclComm_t comm, int rank, size_t count, size_t* begin, size_t* end) {
  FCCL_CHECK(checkComm("fcclSliceRange", comm));
  if (begin == nullptr || end == nullptr)
    return setError(fcclInvalidArgument, "fcclSliceRange: begin/end is NULL");
  if (rank < 0 || rank >= comm->nranks)
    return setError(fcclInvalidArgument, "fcclSliceRange: rank %d is out of range [0, %d)", rank,
                    comm->nranks);
  ir::SliceRange r = ir::sliceRange(int64_t(count), rank, comm->nranks);
  *begin = size_t(r.begin);
  *end = size_t(r.end);
  return fcclSuccess;
}

FCCL_API fcclResult_t fcclProgramDestroy(fcclProgram_t program) {
  delete program;
  return fcclSuccess;
}

}  // extern "C"
