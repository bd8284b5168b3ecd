// rewrite.cc - arena rebuilding, cloning and extraction for the passes (rewrite.h).
#include "fusion/passes/rewrite.h"

#include <algorithm>
#include <unordered_map>

namespace fccl::fusion::passes {

using ir::Node;
using ir::NodeId;
using ir::Op;
using ir::Program;

bool isPointwise(Op op) { return op >= Op::Neg && op <= Op::Dropout; }

namespace {

class Copier {
 public:
  Copier(std::vector<Node> src, Rebuild& ctx, const VisitFn& fn) : src_(std::move(src)), ctx_(ctx), fn_(fn) {}

  NodeId copy(NodeId old, bool root) {
    auto it = memo_.find(old);
    if (it != memo_.end()) return it->second;
    Node n = src_[static_cast<size_t>(old)];
    for (int i = 0; i < ir::opArity(n.op); ++i) {
      NodeId& a = n.args[static_cast<size_t>(i)];
      a = copy(a, false);
    }
    NodeId id = ctx_.add(std::move(n));
    if (fn_) id = fn_(ctx_, id, root);
    memo_.emplace(old, id);
    return id;
  }
  void nextStatement() { memo_.clear(); }

 private:
  std::vector<Node> src_;
  Rebuild& ctx_;
  const VisitFn& fn_;
  std::unordered_map<NodeId, NodeId> memo_;
};

}  // namespace

void rebuild(Program& p, const VisitFn& fn) {
  std::vector<Node> src = std::move(p.nodes);
  p.nodes.clear();
  std::vector<ir::Stmt> stmts = std::move(p.stmts);
  p.stmts.clear();
  Rebuild ctx{p};
  Copier c(std::move(src), ctx, fn);
  for (size_t i = 0; i < stmts.size(); ++i) {
    ctx.stmt = static_cast<int>(i);
    ctx.stmtVar = stmts[i].var;
    c.nextStatement();
    ir::Stmt s = stmts[i];
    s.value = c.copy(s.value, true);
    p.stmts.push_back(s);
  }
}

int32_t addTemp(Program& p, const Node& like, std::string_view hint) {
  std::string name(hint);
  for (int k = 1; p.findVar(name) >= 0; ++k) name = std::string(hint) + "_" + std::to_string(k);
  ir::Var v;
  v.name = name;
  v.kind = ir::VarKind::Temp;
  v.dtype = like.dtype;
  v.layout = like.layout;
  v.shape = like.shape;
  v.loc = like.loc;
  p.vars.push_back(std::move(v));
  return static_cast<int32_t>(p.vars.size() - 1);
}

NodeId addRef(Program& p, int32_t var, ir::Loc loc) {
  const ir::Var& v = p.vars[static_cast<size_t>(var)];
  Node n;
  n.op = Op::Ref;
  n.var = var;
  n.dtype = v.dtype;
  n.layout = v.layout;
  n.shape = v.shape;
  n.loc = loc;
  return p.add(std::move(n));
}

NodeId clone(Program& p, NodeId id) {
  Node n = p.node(id);
  for (int i = 0; i < ir::opArity(n.op); ++i) {
    NodeId& a = n.args[static_cast<size_t>(i)];
    a = clone(p, a);
  }
  return p.add(std::move(n));
}

int32_t extractToTemp(Program& p, NodeId id, std::string_view hint, std::vector<ir::Stmt>* pre) {
  const Node like = p.node(id);
  const int32_t tmp = addTemp(p, like, hint);
  const NodeId copy = clone(p, id);
  pre->push_back({tmp, copy, like.loc});
  Node ref;
  ref.op = Op::Ref;
  ref.var = tmp;
  ref.dtype = like.dtype;
  ref.layout = like.layout;
  ref.shape = like.shape;
  ref.loc = like.loc;
  p.node(id) = ref;
  return tmp;
}

std::vector<NodeId> stmtNodes(const Program& p, int stmt) {
  std::vector<NodeId> out;
  std::vector<char> seen(p.nodes.size(), 0);
  // Iterative post-order: (node, next operand to visit).
  std::vector<std::pair<NodeId, int>> st{{p.stmts[static_cast<size_t>(stmt)].value, 0}};
  while (!st.empty()) {
    auto& [id, k] = st.back();
    const Node& n = p.node(id);
    if (k == 0 && seen[static_cast<size_t>(id)]) {
      st.pop_back();
      continue;
    }
    seen[static_cast<size_t>(id)] = 1;
    if (k < ir::opArity(n.op)) {
      const NodeId a = n.args[static_cast<size_t>(k++)];
      if (!seen[static_cast<size_t>(a)]) st.push_back({a, 0});
      continue;
    }
    out.push_back(id);
    st.pop_back();
  }
  return out;
}

bool stmtContains(const Program& p, int stmt, const std::function<bool(const Node&)>& pred, bool withRoot) {
  const NodeId root = p.stmts[static_cast<size_t>(stmt)].value;
  for (NodeId id : stmtNodes(p, stmt))
    if ((withRoot || id != root) && pred(p.node(id))) return true;
  return false;
}

bool stmtReads(const Program& p, int stmt, int32_t var) {
  return stmtContains(p, stmt, [var](const Node& n) { return n.op == Op::Ref && n.var == var; });
}

}  // namespace fccl::fusion::passes
