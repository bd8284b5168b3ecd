// schedule.cc - stepKindName and printSchedule (schedule.h): one line per step, the statements
// it runs in the IR's own printed form, then "# why".
#include "fusion/lowered/schedule.h"

#include "fusion/ir/printer.h"

namespace fccl::fusion {

const char* stepKindName(StepKind k) {
  switch (k) {
    case StepKind::Pointwise:
      return "pointwise";
    case StepKind::Collective:
      return "collective";
    case StepKind::Fused:
      return "fused";
    case StepKind::Reduction:
      return "reduction";
  }
  return "?";
}

namespace {

std::string varName(const ir::Program& p, int32_t v) {
  return v >= 0 && static_cast<size_t>(v) < p.vars.size() ? p.vars[static_cast<size_t>(v)].name
                                                          : "<var " + std::to_string(v) + ">";
}

std::string stmtText(const ir::Program& p, int32_t s) {
  if (s < 0 || static_cast<size_t>(s) >= p.stmts.size()) return "<stmt " + std::to_string(s) + ">";
  const ir::Stmt& st = p.stmts[static_cast<size_t>(s)];
  return varName(p, st.var) + " = " + ir::printExpr(p, st.value);
}

std::string block(const ir::Program& p, const std::vector<int32_t>& stmts) {
  std::string out = "{ ";
  for (size_t i = 0; i < stmts.size(); ++i) out += (i ? "; " : "") + stmtText(p, stmts[i]);
  return out + " }";
}

}  // namespace

std::string printSchedule(const Schedule& s) {
  const ir::Program& p = s.program;
  std::string out = "schedule " + p.name + ": " + std::to_string(s.steps.size()) + " step" +
                    (s.steps.size() == 1 ? "" : "s") + "\n  buffers:";
  if (s.buffers.empty()) out += " (none)";
  for (size_t i = 0; i < s.buffers.size(); ++i) {
    const int32_t v = s.buffers[i];
    out += (i ? ", " : " ") + varName(p, v);
    if (v >= 0 && static_cast<size_t>(v) < p.vars.size()) {
      const ir::Var& var = p.vars[static_cast<size_t>(v)];
      out += " : " + ir::typeString(p, var.dtype, var.shape, var.layout);
    }
  }
  out += "\n";
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    out += "  " + std::to_string(i) + ": " + stepKindName(st.kind) + " ";
    switch (st.kind) {
      case StepKind::Pointwise:
        out += std::string(st.extent == Extent::Slice ? "slice " : "full ") + block(p, st.stmts);
        break;
      case StepKind::Collective:
        out += std::string(ir::opName(st.op)) + "(";
        if (st.op == ir::Op::AllReduce || st.op == ir::Op::ReduceScatter || st.op == ir::Op::Reduce)
          out += std::string(ir::redOpName(st.redop)) + ", ";
        out += varName(p, st.input);
        if (st.op == ir::Op::Broadcast || st.op == ir::Op::Reduce)
          out += ", " + (st.root >= 0 ? varName(p, st.root) : std::to_string(st.rootValue));
        out += ") -> " + varName(p, st.output);
        break;
      case StepKind::Fused: {
        out += "reduce_scatter(" + std::string(ir::redOpName(st.redop)) + ", " + varName(p, st.input) +
               ") -> " + varName(p, st.reduced) + " hook " + block(p, st.stmts) + " gather {";
        for (size_t g = 0; g < st.gather.size(); ++g) out += (g ? ", " : " ") + varName(p, st.gather[g]);
        out += st.gather.empty() ? "}" : " }";
        break;
      }
      case StepKind::Reduction:
        out += std::string(st.extent == Extent::Slice ? "slice " : "full ") + ir::opName(st.op) + "(" +
               varName(p, st.input) + ") -> " + varName(p, st.output);
        break;
    }
    if (st.overlapWith >= 0) out += " [overlaps step " + std::to_string(st.overlapWith) + "]";
    if (!st.why.empty()) out += "  # " + st.why;
    out += "\n";
  }
  return out;
}

}  // namespace fccl::fusion
