// registry.h - the pass table (name, summary, options, statistics, run) and the pipeline
// helpers: parsing a user schedule ("split,reorder", "none", "default"), and printing the IR
// with the schedule annotations the passes record beside it.
//
// Passes rewrite a checked ir::Program in place and keep it checked (check::verify holds after
// each; tests and lower() run it). Decisions that are not IR - which statements form a fused
// collective region, which collective overlaps its producer - live in Annotations, a side table
// keyed by statement index, so ir.h needs no pass-specific fields. A pass that renumbers
// statements (fuse) recomputes or drops the annotations it invalidates; lower() re-validates
// every annotation before using it, so a stale one costs fusion, never correctness.
// Passes never read the environment.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fusion/ir/ir.h"

namespace fccl::fusion::passes {

// Counters a pass bumps (MLIR's pass statistics). Names are the pass's declared statistics.
struct PassStats {
  std::vector<std::pair<std::string, int64_t>> counters;  // in first-bump order
  void add(std::string_view name, int64_t n = 1);
  int64_t get(std::string_view name) const;  // 0 when never bumped
  std::string str() const;                   // "name=value, ..."
};

// A fused collective region (fuse): statement rsStmt is `reduced = reduce_scatter(op, input)`
// with `reduced` a sliced temporary and `input` a Ref; statements [hookBegin, hookEnd) follow it
// directly and are its reduced hook: sliced pointwise statements, or `v = all_gather(X)` with v
// replicated (X computed on the slice, v then all-gathered).
struct FusedRegion {
  int32_t rsStmt = -1;
  int32_t hookBegin = -1;
  int32_t hookEnd = -1;
};

// A collective that may consume its input chunk by chunk as the producer writes it (overlap).
struct OverlapPair {
  int32_t producer = -1;  // pointwise statement writing `var`
  int32_t consumer = -1;  // statement whose root collective reads `var`
  int32_t var = -1;
};

struct Annotations {
  std::vector<FusedRegion> fused;
  std::vector<OverlapPair> overlaps;
};

struct Statistic {
  const char* name;
  const char* description;
};

struct PassInfo {
  const char* name;
  const char* summary;
  const char* options;  // the options the pass takes ("none": it has none)
  std::vector<Statistic> statistics;
  // Rewrites p in place; returns whether the IR (or its annotations) changed.
  bool (*run)(ir::Program& p, Annotations& notes, PassStats* stats);
};

// The table, in default pipeline order.
const std::vector<PassInfo>& passTable();
const PassInfo* findPass(std::string_view name);
std::vector<std::string> defaultPipeline();  // split, reorder, fuse, overlap

// A user schedule: "default" (or empty) -> the default pipeline, "none" -> no passes, else
// comma-separated pass names (spaces ignored, repeats allowed, order kept). false with a
// message naming the bad name for an unknown pass or an empty entry.
bool parsePipeline(std::string_view spec, std::vector<std::string>* out, std::string* error);

// ir::print(p) with "# fuse: ..." / "# overlap: ..." comments on annotated statements (still
// parseable: they are comments).
std::string printAnnotated(const ir::Program& p, const Annotations& notes);

// The passes, one per file.
bool runSplit(ir::Program& p, Annotations& notes, PassStats* stats);    // split.cc
bool runReorder(ir::Program& p, Annotations& notes, PassStats* stats);  // reorder.cc
bool runFuse(ir::Program& p, Annotations& notes, PassStats* stats);     // fuse.cc
bool runOverlap(ir::Program& p, Annotations& notes, PassStats* stats);  // overlap.cc

// Shared by fuse and lower: whether statement `s` may run in a reduced hook (see FusedRegion).
// *scalarTemp: it is a scalar temporary (fuse hoists those before the reduce_scatter).
bool hookEligible(const ir::Program& p, int s, bool* scalarTemp);

}  // namespace fccl::fusion::passes
