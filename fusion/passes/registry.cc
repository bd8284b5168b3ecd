// registry.cc - the pass table, user schedule parsing and annotated printing (registry.h).
#include "fusion/passes/registry.h"

#include "fusion/ir/printer.h"
#include "fusion/parse/parser.h"

namespace fccl::fusion::passes {

void PassStats::add(std::string_view name, int64_t n) {
  for (auto& [k, v] : counters) {
    if (k == name) {
      v += n;
      return;
    }
  }
  counters.emplace_back(std::string(name), n);
}

int64_t PassStats::get(std::string_view name) const {
  for (const auto& [k, v] : counters)
    if (k == name) return v;
  return 0;
}

std::string PassStats::str() const {
  std::string out;
  for (const auto& [k, v] : counters) out += (out.empty() ? "" : ", ") + k + "=" + std::to_string(v);
  return out;
}

const std::vector<PassInfo>& passTable() {
  static const std::vector<PassInfo> kPasses = {
      {"split",
       "allreduce(op, x) -> all_gather(reduce_scatter(op, x)) on tensors (avg stays avg)",
       "none",
       {{"split", "allreduces split into reduce_scatter + all_gather"}},
       runSplit},
      {"reorder",
       "move pointwise work consuming an all_gather onto slices, before the gather (fixed point)",
       "none",
       {{"hoisted", "pointwise nodes moved before an all_gather"},
        {"slices-folded", "all_gathers dropped where only this rank's slice is read"},
        {"reductions-sliced", "norm/sum/max/any_nonfinite of an all_gather made cross-rank"},
        {"temps-sliced", "temporaries assigned an all_gather kept sliced instead"},
        {"rounds", "fixed-point iterations"}},
       runReorder},
      {"fuse",
       "make a reduce_scatter, the sliced pointwise statements after it and their all_gathers "
       "one fused collective region (recorded in Annotations)",
       "none",
       {{"regions", "fused regions formed"},
        {"hook-statements", "statements placed in a reduced hook"},
        {"gathers", "all_gathers of replicated results fused into a region"},
        {"scalars-hoisted", "scalar temporaries moved before a reduce_scatter"},
        {"extracted", "reduce_scatters (or their operands) moved into their own statement"}},
       runFuse},
      {"overlap",
       "schedule annotation: a collective whose input a pointwise statement just produced may "
       "consume it chunk by chunk (the runtime may still run them one after the other)",
       "none",
       {{"pairs", "producer/consumer pairs recorded"}},
       runOverlap},
  };
  return kPasses;
}

const PassInfo* findPass(std::string_view name) {
  for (const PassInfo& p : passTable())
    if (name == p.name) return &p;
  return nullptr;
}

std::vector<std::string> defaultPipeline() {
  std::vector<std::string> out;
  for (const PassInfo& p : passTable()) out.emplace_back(p.name);
  return out;
}

bool parsePipeline(std::string_view spec, std::vector<std::string>* out, std::string* error) {
  std::string s;
  for (char c : spec)
    if (c != ' ' && c != '\t') s += c;
  out->clear();
  if (s.empty() || s == "default") {
    *out = defaultPipeline();
    return true;
  }
  if (s == "none") return true;
  std::vector<std::string> names;
  for (const PassInfo& p : passTable()) names.emplace_back(p.name);
  size_t pos = 0;
  while (true) {
    const size_t comma = s.find(',', pos);
    const std::string name = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (name.empty()) {
      *error = "empty pass name in schedule \"" + std::string(spec) + "\"";
      return false;
    }
    if (!findPass(name)) {
      std::string known;
      for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
      *error = "unknown pass '" + name + "' in schedule \"" + std::string(spec) + "\"";
      const std::string near = ir::parse::closestName(name, names);
      if (!near.empty()) *error += " (did you mean '" + near + "'?)";
      *error += "; passes: " + known + ", or 'none' / 'default'";
      return false;
    }
    out->push_back(name);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return true;
}

std::string printAnnotated(const ir::Program& p, const Annotations& notes) {
  const std::string text = ir::print(p);
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  // The statements are the last lines, one each (printer.h).
  const size_t first = lines.size() - p.stmts.size();
  std::vector<std::string> note(p.stmts.size());
  auto addNote = [&](int32_t s, const std::string& t) {
    if (s < 0 || static_cast<size_t>(s) >= note.size()) return;
    note[static_cast<size_t>(s)] += (note[static_cast<size_t>(s)].empty() ? "  # " : "; ") + t;
  };
  for (size_t r = 0; r < notes.fused.size(); ++r) {
    const FusedRegion& f = notes.fused[r];
    const std::string tag = "fuse: region " + std::to_string(r);
    addNote(f.rsStmt, tag + " reduce_scatter");
    for (int32_t s = f.hookBegin; s < f.hookEnd; ++s) {
      const ir::Node& n = p.node(p.stmts[static_cast<size_t>(s)].value);
      addNote(s, tag + (n.op == ir::Op::AllGather ? " hook + gather" : " hook"));
    }
  }
  for (const OverlapPair& o : notes.overlaps) {
    addNote(o.consumer, "overlap: consumes " + p.vars[static_cast<size_t>(o.var)].name + " as statement " +
                            std::to_string(o.producer) + " produces it");
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    out += lines[i];
    if (i >= first) out += note[i - first];
    out += "\n";
  }
  return out;
}

}  // namespace fccl::fusion::passes
