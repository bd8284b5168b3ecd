// lower.cc - pipeline driver and lowering to a Schedule (lower.h has the contract). Three
// phases: run the passes (verify after each), normalize (every collective and whole-tensor
// reduction becomes the root of its own statement with variable operands; fused regions are
// re-validated and left untouched), then cut the statement list into steps.
#include "fusion/passes/lower.h"

#include <algorithm>
#include <set>

#include "fusion/check/checker.h"
#include "fusion/ir/printer.h"
#include "fusion/passes/registry.h"
#include "fusion/passes/rewrite.h"

namespace fccl::fusion {

using ir::Layout;
using ir::Node;
using ir::NodeId;
using ir::Op;
using ir::Program;
using passes::Annotations;
using passes::FusedRegion;

namespace {

bool verified(const Program& p, const std::string& what, std::string* error) {
  ir::Diagnostics d(p.source.empty() ? "<program>" : p.source);
  if (ir::check::verify(p, d)) return true;
  *error = what + ":\n" + d.str();
  return false;
}

// Keeps only the valid prefix of each region (statements may have changed since fuse ran).
void validateRegions(const Program& p, Annotations& notes) {
  std::vector<FusedRegion> ok;
  int32_t next = 0;  // regions must not overlap
  for (FusedRegion r : notes.fused) {
    if (r.rsStmt < next || r.hookEnd > static_cast<int32_t>(p.stmts.size()) || r.hookBegin != r.rsStmt + 1)
      continue;
    const ir::Stmt& s = p.stmts[static_cast<size_t>(r.rsStmt)];
    const Node& rs = p.node(s.value);
    const ir::Var& v = p.vars[static_cast<size_t>(s.var)];
    if (rs.op != Op::ReduceScatter || p.node(rs.args[0]).op != Op::Ref || v.kind != ir::VarKind::Temp)
      continue;
    int32_t end = r.hookBegin;
    bool scalar = false;
    while (end < r.hookEnd && passes::hookEligible(p, end, &scalar) && !scalar) ++end;
    if (end == r.hookBegin) continue;
    r.hookEnd = end;
    ok.push_back(r);
    next = end;
  }
  notes.fused = std::move(ok);
}

bool extractable(const Node& n) {
  return (ir::isCollective(n.op) && n.op != Op::Slice) || ir::isWholeReduction(n.op);
}

// Temporary names: the op and its operand ("allreduce_g", "norm_u"), never a reserved word.
std::string hintFor(const Program& p, const Node& n) {
  const std::string base = n.op == Op::MaxAll ? "max" : ir::opName(n.op);
  const Node& a = p.node(n.args[0]);
  return base + "_" + (a.op == Op::Ref ? p.vars[static_cast<size_t>(a.var)].name : "t");
}

// Moves nested collectives/reductions and non-variable collective operands into temporaries,
// to a fixed point. Statements of fused regions are left as they are. origin[i] says where
// statement i came from ("" for the program's own); remap[old] = new statement index.
void normalize(Program& p, Annotations& notes, std::vector<std::string>* origin) {
  const size_t n0 = p.stmts.size();
  std::vector<int32_t> orig(n0);
  for (size_t i = 0; i < n0; ++i) orig[i] = static_cast<int32_t>(i);
  std::vector<char> keep(n0, 0);
  for (const FusedRegion& r : notes.fused)
    for (int32_t s = r.rsStmt; s < r.hookEnd; ++s) keep[static_cast<size_t>(s)] = 1;
  origin->assign(n0, "");
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<ir::Stmt> out;
    std::vector<int32_t> o2;
    std::vector<char> k2;
    std::vector<std::string> g2;
    for (size_t i = 0; i < p.stmts.size(); ++i) {
      std::vector<ir::Stmt> pre;
      if (!keep[i]) {
        const int si = static_cast<int>(i);
        const NodeId root = p.stmts[i].value;
        for (NodeId id : passes::stmtNodes(p, si)) {  // all_gather(reduce_scatter(x)): allreduce
          Node& n = p.node(id);
          if (n.op == Op::AllGather && p.node(n.args[0]).op == Op::ReduceScatter) {
            const Node rs = p.node(n.args[0]);
            n.op = Op::AllReduce;
            n.redop = rs.redop;
            n.args[0] = rs.args[0];
            changed = true;
          }
        }
        for (NodeId id : passes::stmtNodes(p, si)) {
          if (id != root && extractable(p.node(id))) {
            passes::extractToTemp(p, id, hintFor(p, p.node(id)), &pre);
            changed = true;
          }
        }
        const Node r = p.node(root);
        if (extractable(r)) {
          const bool rooted = r.op == Op::Broadcast || r.op == Op::Reduce;
          if (p.node(r.args[0]).op != Op::Ref) {
            passes::extractToTemp(p, r.args[0],
                                  std::string(r.op == Op::MaxAll ? "max" : ir::opName(r.op)) + "_in", &pre);
            changed = true;
          }
          if (rooted && p.node(r.args[1]).op != Op::Ref && p.node(r.args[1]).op != Op::Literal) {
            passes::extractToTemp(p, r.args[1], std::string(ir::opName(r.op)) + "_root", &pre);
            changed = true;
          }
        }
      }
      for (const ir::Stmt& s : pre) {
        out.push_back(s);
        o2.push_back(-1);
        k2.push_back(0);
        g2.push_back("moved out of " + p.vars[static_cast<size_t>(p.stmts[i].var)].name +
                     "'s statement by lowering");
      }
      out.push_back(p.stmts[i]);
      o2.push_back(orig[i]);
      k2.push_back(keep[i]);
      g2.push_back((*origin)[i]);
    }
    p.stmts = std::move(out);
    orig = std::move(o2);
    keep = std::move(k2);
    *origin = std::move(g2);
    passes::rebuild(p);
  }
  std::vector<int32_t> remap(n0, -1);
  for (size_t i = 0; i < orig.size(); ++i)
    if (orig[i] >= 0) remap[static_cast<size_t>(orig[i])] = static_cast<int32_t>(i);
  for (FusedRegion& r : notes.fused) {
    const int32_t len = r.hookEnd - r.hookBegin;
    r.rsStmt = remap[static_cast<size_t>(r.rsStmt)];
    r.hookBegin = r.rsStmt + 1;
    r.hookEnd = r.hookBegin + len;
  }
  for (passes::OverlapPair& o : notes.overlaps) {
    o.producer =
        o.producer >= 0 && static_cast<size_t>(o.producer) < n0 ? remap[static_cast<size_t>(o.producer)] : -1;
    o.consumer =
        o.consumer >= 0 && static_cast<size_t>(o.consumer) < n0 ? remap[static_cast<size_t>(o.consumer)] : -1;
  }
}

int32_t refVar(const Program& p, NodeId id) {
  const Node& n = p.node(id);
  return n.op == Op::Ref ? n.var : -1;
}

const ir::Shape& stmtShape(const Program& p, int32_t s) {
  return p.vars[static_cast<size_t>(p.stmts[static_cast<size_t>(s)].var)].shape;
}

std::string name(const Program& p, int32_t var) { return p.vars[static_cast<size_t>(var)].name; }

bool contains(const std::vector<std::string>& v, const char* s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

bool lower(const Program& checked, const std::vector<std::string>& pipeline, Schedule* out,
           std::vector<std::string>* dumps, std::string* error) {
  if (!verified(checked, "lower: the input is not a checked program", error)) return false;
  Program p = checked;
  Annotations notes;
  for (const std::string& pass : pipeline) {
    const passes::PassInfo* info = passes::findPass(pass);
    if (!info) {
      std::string e;
      std::vector<std::string> ignored;
      passes::parsePipeline(pass, &ignored, &e);
      *error = e.empty() ? "unknown pass '" + pass + "'" : e;
      return false;
    }
    passes::PassStats stats;
    const bool changed = info->run(p, notes, &stats);
    if (!verified(p, "internal error: pass '" + pass + "' produced an invalid program", error)) return false;
    if (dumps) {
      dumps->push_back("# after " + pass + (changed ? "" : " (no change)") +
                       (stats.counters.empty() ? "" : " [" + stats.str() + "]") + "\n" +
                       passes::printAnnotated(p, notes));
    }
  }

  validateRegions(p, notes);
  std::vector<std::string> origin;
  normalize(p, notes, &origin);
  if (!verified(p, "internal error: lowering produced an invalid program", error)) return false;

  Schedule s;
  std::vector<int32_t> stmtStep(p.stmts.size(), -1);
  std::vector<int32_t> regionAt(p.stmts.size(), -1);
  for (size_t r = 0; r < notes.fused.size(); ++r)
    regionAt[static_cast<size_t>(notes.fused[r].rsStmt)] = static_cast<int32_t>(r);
  const bool fuseRan = contains(pipeline, "fuse");
  const bool splitRan = contains(pipeline, "split");
  auto note = [&](size_t i) { return origin[i].empty() ? std::string() : " (" + origin[i] + ")"; };

  for (size_t i = 0; i < p.stmts.size();) {
    const ir::Stmt& st = p.stmts[i];
    const ir::Var& var = p.vars[static_cast<size_t>(st.var)];
    const Node& root = p.node(st.value);
    const int32_t si = static_cast<int32_t>(i);
    const int32_t stepIdx = static_cast<int32_t>(s.steps.size());
    if (regionAt[i] >= 0) {
      const FusedRegion& r = notes.fused[static_cast<size_t>(regionAt[i])];
      Step f;
      f.kind = StepKind::Fused;
      f.redop = root.redop;
      f.input = refVar(p, root.args[0]);
      f.reduced = st.var;
      std::string gathered;
      for (int32_t h = r.hookBegin; h < r.hookEnd; ++h) {
        f.stmts.push_back(h);
        const ir::Stmt& hs = p.stmts[static_cast<size_t>(h)];
        if (p.node(hs.value).op == Op::AllGather &&
            std::find(f.gather.begin(), f.gather.end(), hs.var) == f.gather.end()) {
          f.gather.push_back(hs.var);
          gathered += (gathered.empty() ? "" : ", ") + name(p, hs.var);
        }
      }
      f.why = "fuse: reduce_scatter(" + std::string(ir::redOpName(f.redop)) + ", " + name(p, f.input) +
              ") with " + std::to_string(f.stmts.size()) + " statement(s) in its reduced hook" +
              (gathered.empty() ? ", nothing gathered" : ", then all_gather of " + gathered);
      for (int32_t h = r.rsStmt; h < r.hookEnd; ++h) stmtStep[static_cast<size_t>(h)] = stepIdx;
      s.steps.push_back(std::move(f));
      i = static_cast<size_t>(r.hookEnd);
      continue;
    }
    if (ir::isCollective(root.op) && root.op != Op::Slice) {
      Step c;
      c.kind = StepKind::Collective;
      c.op = root.op;
      c.redop = root.redop;
      c.input = refVar(p, root.args[0]);
      c.output = st.var;
      c.stmts = {si};
      if (root.op == Op::Broadcast || root.op == Op::Reduce) {
        const Node& rt = p.node(root.args[1]);
        if (rt.op == Op::Ref)
          c.root = rt.var;
        else
          c.rootValue = static_cast<int64_t>(rt.value);
      }
      std::string why =
          std::string(ir::opName(root.op)) + " of " + name(p, c.input) + " into " + name(p, c.output);
      if (root.op == Op::ReduceScatter)
        why += fuseRan ? ": not fused (no hook-eligible work on its slice follows)"
                       : ": not fused (fuse not in the schedule)";
      else if (root.op == Op::AllReduce)
        why += root.isScalar() ? ": scalar (split leaves scalars whole)"
               : splitRan      ? ": all_gather(reduce_scatter) with no work moved between them"
                                 " is one allreduce"
                               : ": whole (split not in the schedule)";
      else if (root.op == Op::AllGather)
        why += ": unfused gather of a sliced value";
      c.why = why + note(i);
      s.steps.push_back(std::move(c));
      stmtStep[i] = stepIdx;
      ++i;
      continue;
    }
    if (ir::isWholeReduction(root.op)) {
      Step r;
      r.kind = StepKind::Reduction;
      r.op = root.op;
      r.input = refVar(p, root.args[0]);
      r.output = st.var;
      r.stmts = {si};
      r.extent = root.crossRank ? Extent::Slice : Extent::Full;
      r.why = std::string(ir::opName(root.op)) + " of " + name(p, r.input) +
              (root.crossRank ? ": partial over this rank's slice + tiny allreduce (sliced operand)"
                              : ": whole tensor, on each rank") +
              note(i);
      s.steps.push_back(std::move(r));
      stmtStep[i] = stepIdx;
      ++i;
      continue;
    }
    // Pointwise.
    const Extent ext = !var.isScalar() && var.layout == Layout::Sliced ? Extent::Slice : Extent::Full;
    Step* prev = s.steps.empty() ? nullptr : &s.steps.back();
    bool join = false;
    if (prev && prev->kind == StepKind::Pointwise && prev->extent == ext) {
      const ir::Shape& ps = stmtShape(p, prev->stmts.front());
      join = var.isScalar() ? ps.empty() : !ps.empty() && ir::sameElementCount(ps, var.shape);
    }
    if (join) {
      prev->stmts.push_back(si);
      stmtStep[i] = stepIdx - 1;
    } else {
      Step w;
      w.kind = StepKind::Pointwise;
      w.extent = ext;
      w.stmts = {si};
      w.why = var.isScalar() ? "scalar statements, once"
              : ext == Extent::Slice
                  ? "pointwise on this rank's slice (sliced values)"
                  : std::string("pointwise on all elements (") + ir::layoutName(var.layout) + " values)";
      w.why += note(i);
      s.steps.push_back(std::move(w));
      stmtStep[i] = stepIdx;
    }
    ++i;
  }

  // Overlap annotations: consumer step reads `var` that the producer's Pointwise step writes.
  for (const passes::OverlapPair& o : notes.overlaps) {
    if (o.producer < 0 || o.consumer < 0) continue;
    const int32_t ps = stmtStep[static_cast<size_t>(o.producer)];
    const int32_t cs = stmtStep[static_cast<size_t>(o.consumer)];
    if (ps < 0 || cs < 0 || ps >= cs) continue;
    Step& c = s.steps[static_cast<size_t>(cs)];
    if (s.steps[static_cast<size_t>(ps)].kind != StepKind::Pointwise || c.input != o.var ||
        (c.kind != StepKind::Collective && c.kind != StepKind::Fused))
      continue;
    c.overlapWith = ps;
    c.why += "; overlap: may consume " + name(p, o.var) + " chunks as step " + std::to_string(ps) +
             " produces them";
  }

  // Buffers.
  const size_t nv = p.vars.size();
  std::vector<int32_t> def(nv, -1);
  std::vector<char> buffered(nv, 0);
  std::vector<std::set<int32_t>> uses(nv);
  for (size_t k = 0; k < s.steps.size(); ++k) {
    const Step& step = s.steps[k];
    const int32_t sk = static_cast<int32_t>(k);
    auto use = [&](int32_t v) {
      if (v >= 0) uses[static_cast<size_t>(v)].insert(sk);
    };
    use(step.input);
    use(step.root);
    std::vector<int32_t> ss = step.stmts;
    if (step.kind == StepKind::Fused) def[static_cast<size_t>(step.reduced)] = sk;
    for (int32_t st : ss) {
      for (NodeId id : passes::stmtNodes(p, st))
        if (p.node(id).op == Op::Ref) use(p.node(id).var);
      const int32_t v = p.stmts[static_cast<size_t>(st)].var;
      if (def[static_cast<size_t>(v)] < 0) def[static_cast<size_t>(v)] = sk;
      if (step.kind == StepKind::Collective || step.kind == StepKind::Reduction)
        buffered[static_cast<size_t>(v)] = 1;
    }
    for (int32_t g : step.gather) buffered[static_cast<size_t>(g)] = 1;
  }
  for (size_t v = 0; v < nv; ++v) {
    if (p.vars[v].kind != ir::VarKind::Temp) continue;
    for (int32_t u : uses[v])
      if (u != def[v]) buffered[v] = 1;
    if (buffered[v]) s.buffers.push_back(static_cast<int32_t>(v));
  }
  // Each Pointwise and Fused step's statements, lowered once for every backend.
  for (size_t k = 0; k < s.steps.size(); ++k) {
    Step& step = s.steps[k];
    if (step.kind != StepKind::Pointwise && step.kind != StepKind::Fused) continue;
    lowered::FormOptions fo;
    if (step.kind == StepKind::Fused) fo.chunkVar = step.reduced;
    std::string why;
    if (!lowered::buildForm(p, step.stmts, fo, &step.form, &why)) {
      *error = "internal error: step " + std::to_string(k) + " (" + stepKindName(step.kind) + "): " + why;
      return false;
    }
  }
  s.program = std::move(p);
  *out = std::move(s);
  return true;
}

}  // namespace fccl::fusion
