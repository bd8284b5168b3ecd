// cuda_program.cc - a whole program's hooks in one translation unit: the program is lowered
// (fusion/passes/lower.h) and every Pointwise step's lowered form becomes a plain hook, every
// Fused step's a reduced-chunk hook bound to Step::reduced. What `fcclc --emit=cuda` prints and what the
// tests compile with NVRTC for every program.
#include "fusion/codegen/cuda_emit.h"
#include "fusion/passes/lower.h"
#include "fusion/passes/registry.h"

namespace fccl::fusion::codegen {

std::string emitScheduleCuda(const Schedule& s, std::string* error) {
  std::string out = cudaPrelude(s.program);
  for (size_t k = 0; k < s.steps.size(); ++k) {
    const Step& step = s.steps[k];
    if (step.kind != StepKind::Pointwise && step.kind != StepKind::Fused) continue;
    EmitOptions o;
    o.name = s.program.name + "_" + std::to_string(k);  // the step's index: stable, and a
                                                        // runtime finds a step's kernel by it
    o.prelude = false;
    if (step.kind == StepKind::Fused) {
      o.kind = HookKind::FusedChunk;
      o.reducedVar = step.reduced;
    }
    const std::string hook = emitCuda(s.program, step.form, o, error);
    if (hook.empty()) return "";
    out += hook;
  }
  return out;
}

std::string emitProgramCuda(const ir::Program& checked, std::string* error) {
  std::string local;
  if (!error) error = &local;
  Schedule s;
  if (!lower(checked, passes::defaultPipeline(), &s, nullptr, error)) return "";
  return emitScheduleCuda(s, error);
}

}  // namespace fccl::fusion::codegen
