// rewrite.h - helpers shared by the passes and the lowering: copying a program's node arena
// statement by statement with a bottom-up rewrite, cloning and extracting subexpressions into
// temporaries, and small queries. Invariant kept: after rebuild() the arena is in statement
// order, operands before users, every node reachable from exactly one statement (ir.h), and
// every new node carries the dtype/layout/shape/crossRank that check::verify expects.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "fusion/ir/ir.h"

namespace fccl::fusion::passes {

bool isPointwise(ir::Op op);  // Neg .. Dropout (Cast included)

// Context of one rebuild() visit. `out` is the program being built: its vars may be appended
// to, nodes may be added (operands must be ids already in `out`).
struct Rebuild {
  ir::Program& out;
  int stmt = -1;  // index of the source statement being copied
  int32_t stmtVar = -1;
  ir::NodeId add(ir::Node n) { return out.add(std::move(n)); }
};

// fn(ctx, id, root): `id` is a freshly copied node of `out` whose operands are already
// rewritten; return `id` to keep it or another node of `out` to use instead. root: the node is
// the statement's value. Copies each statement's tree post-order into a fresh arena (shared
// nodes copied once per statement), so in-place edits and out-of-order additions made before
// the call are put back in order. fn may be empty (compaction: drops unreachable nodes).
using VisitFn = std::function<ir::NodeId(Rebuild&, ir::NodeId, bool)>;
void rebuild(ir::Program& p, const VisitFn& fn = {});

// A new Temp variable typed like node `like` (dtype, layout, shape), named `hint` or
// `hint_K` when taken. Returns its index.
int32_t addTemp(ir::Program& p, const ir::Node& like, std::string_view hint);
ir::NodeId addRef(ir::Program& p, int32_t var, ir::Loc loc);  // a Ref typed from the var
ir::NodeId clone(ir::Program& p, ir::NodeId id);              // deep copy of a subtree (appended)

// Moves the subtree at node `id` (owned by some statement) into a new statement
// `tmp = <clone of subtree>` appended to *pre, and turns node `id` into Ref(tmp) in place.
// The arena is out of order afterwards; call rebuild() once the statements are in place.
int32_t extractToTemp(ir::Program& p, ir::NodeId id, std::string_view hint, std::vector<ir::Stmt>* pre);

// Every node of the statement's tree, each once, in post-order (operands first).
std::vector<ir::NodeId> stmtNodes(const ir::Program& p, int stmt);
// The statement's tree contains a node with op matching pred (root included when withRoot).
bool stmtContains(const ir::Program& p, int stmt, const std::function<bool(const ir::Node&)>& pred,
                  bool withRoot = true);
// Whether a statement reads variable `var` anywhere in its tree.
bool stmtReads(const ir::Program& p, int stmt, int32_t var);

}  // namespace fccl::fusion::passes
