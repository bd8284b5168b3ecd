// cuda_emit.cc - one hook (cuda_emit.h): scalar statements become per-thread locals before the
// element loop (every thread computes the same values; scalar results are written by global
// thread 0), tensor statements one line each inside a grid-stride loop over [begin, end).
// Variables are renamed per assignment (m_0 on entry, m_1 after the first write ...), which
// keeps the program's sequential semantics when scalar statements are hoisted.
#include <algorithm>
#include <set>

#include "fusion/codegen/cuda_emit.h"
#include "fusion/codegen/cuda_expr.h"
#include "fusion/ir/printer.h"

namespace fccl::fusion::codegen {

using ir::DType;
using ir::Node;
using ir::NodeId;
using ir::Op;
using ir::Var;

namespace {

// A node whose value the hook reads from a slot instead of computing it elementwise.
bool materialized(Op op) {
  return ir::isWholeReduction(op) || (ir::isCollective(op) && op != Op::AllGather && op != Op::Slice);
}

// Variables read (Ref) anywhere in the value tree of statement `s`.
void refsOf(const ir::Program& p, NodeId id, std::vector<char>* seen, std::vector<char>* vars) {
  if ((*seen)[static_cast<size_t>(id)]) return;
  (*seen)[static_cast<size_t>(id)] = 1;
  const Node& n = p.node(id);
  if (n.op == Op::Ref) (*vars)[static_cast<size_t>(n.var)] = 1;
  for (int i = 0; i < ir::opArity(n.op); ++i) refsOf(p, n.args[static_cast<size_t>(i)], seen, vars);
}

class HookEmitter {
 public:
  HookEmitter(const ir::Program& p, const std::vector<int32_t>& stmts, const EmitOptions& o)
      : p_(p),
        stmts_(stmts),
        o_(o),
        name_(o.name.empty() ? p.name : o.name),
        chunk_(o.kind == HookKind::FusedChunk) {}

  bool run(std::string* out, std::string* err) {
    if (!validate(err)) return false;
    version_.assign(p_.vars.size(), 0);
    const size_t nv = p_.vars.size();
    ptrUse_.assign(nv, 0);
    // Which variables statements outside this hook read: their temporaries need storage.
    std::vector<char> inList(p_.stmts.size(), 0), outsideRefs(nv, 0);
    for (int32_t s : stmts_) inList[static_cast<size_t>(s)] = 1;
    for (size_t s = 0; s < p_.stmts.size(); ++s) {
      if (inList[s]) continue;
      std::vector<char> seen(p_.nodes.size(), 0);
      refsOf(p_, p_.stmts[s].value, &seen, &outsideRefs);
    }
    for (size_t k = 0; k < stmts_.size(); ++k) {
      // Is the target read by a later statement of this hook (then it needs a local)?
      std::vector<char> seen(p_.nodes.size(), 0), later(nv, 0);
      for (size_t j = k + 1; j < stmts_.size(); ++j)
        refsOf(p_, p_.stmts[static_cast<size_t>(stmts_[j])].value, &seen, &later);
      const ir::Stmt& st = p_.stmts[static_cast<size_t>(stmts_[k])];
      statement(st, later[static_cast<size_t>(st.var)] != 0, outsideRefs[static_cast<size_t>(st.var)] != 0);
    }
    *out = assemble();
    return true;
  }

 private:
  bool validate(std::string* err) {
    for (int32_t s : stmts_) {
      if (s < 0 || static_cast<size_t>(s) >= p_.stmts.size()) {
        *err = "statement index " + std::to_string(s) + " is out of range";
        return false;
      }
    }
    if (!chunk_) return true;
    if ((o_.reducedVar >= 0) == (o_.reducedNode != ir::kNoNode)) {
      *err = "a FusedChunk hook binds `reduced` to exactly one of reducedVar and reducedNode";
      return false;
    }
    if (o_.reducedVar >= 0) {
      if (static_cast<size_t>(o_.reducedVar) >= p_.vars.size() ||
          p_.vars[static_cast<size_t>(o_.reducedVar)].isScalar()) {
        *err = "reducedVar " + std::to_string(o_.reducedVar) + " is not a tensor variable";
        return false;
      }
      reducedType_ = p_.vars[static_cast<size_t>(o_.reducedVar)].dtype;
      return true;
    }
    if (o_.reducedNode < 0 || static_cast<size_t>(o_.reducedNode) >= p_.nodes.size() ||
        (p_.node(o_.reducedNode).op != Op::AllReduce && p_.node(o_.reducedNode).op != Op::ReduceScatter) ||
        p_.node(o_.reducedNode).isScalar()) {
      *err = "reducedNode must be a tensor allreduce or reduce_scatter";
      return false;
    }
    reducedType_ = p_.node(o_.reducedNode).dtype;
    return true;
  }

  const Var& var(int32_t v) const { return p_.vars[static_cast<size_t>(v)]; }
  std::string slotStr(int32_t s) const { return std::to_string(s); }
  std::string vname(int32_t v, int ver) const { return var(v).name + "_" + std::to_string(ver); }
  std::string index(int32_t v) const {
    return var(v).layout == ir::Layout::Sliced ? "i - " + var(v).name + "_off" : "i";
  }

  // The C++ expression of node `id` (its dtype's compute type).
  Expr expr(NodeId id) {
    const Node& n = p_.node(id);
    if (chunk_ && id == o_.reducedNode) return {slotLoad(id), 0};
    if (materialized(n.op)) return {slotLoad(id), 0};
    switch (n.op) {
      case Op::Literal:
        return literal(n.dtype, n.value);
      case Op::Ref:
        return {readVar(n.var), 0};
      case Op::NRanks:
        return {"a.nranks", 0};
      case Op::Rank:
        return {"a.rank", 0};
      case Op::AllGather:
      case Op::Slice:
        return expr(n.args[0]);  // the identity at a logical index
      case Op::Cast:
        return convert(p_.node(n.args[0]).dtype, n.dtype, expr(n.args[0]));
      default:
        break;
    }
    const int k = ir::opArity(n.op);
    Expr args[3];
    DType types[3] = {DType::Untyped, DType::Untyped, DType::Untyped};
    for (int i = 0; i < k; ++i) {
      args[i] = expr(n.args[static_cast<size_t>(i)]);
      types[i] = p_.node(n.args[static_cast<size_t>(i)]).dtype;
    }
    Expr out;
    pointwiseExpr(n.op, n.dtype, types, args, "i", &out);  // every remaining op is pointwise
    return out;
  }

  // Whether node `id`'s value is already rounded to its dtype (casts, literals, declared
  // variables), so storing it into a half variable needs no extra rounding.
  bool rounded(NodeId id) const {
    const Node& n = p_.node(id);
    switch (n.op) {
      case Op::Cast:
      case Op::Literal:
        return true;
      case Op::AllGather:
      case Op::Slice:
        return rounded(n.args[0]);
      case Op::Select:
        return rounded(n.args[1]) && rounded(n.args[2]);
      case Op::Ref:
        return var(n.var).kind != ir::VarKind::Temp;
      default:
        return false;
    }
  }

  // A slot value (collective or reduction result computed before the hook), loaded once.
  std::string slotLoad(NodeId id) {
    const Node& n = p_.node(id);
    const int32_t s = nodeSlot(p_, id);
    const bool bound = chunk_ && id == o_.reducedNode;
    const std::string name = "slot" + slotStr(s);
    if (!loaded_.insert(name).second) return name;
    std::string e = ir::printExpr(p_, id);
    if (e.size() > 60) e = e.substr(0, 57) + "...";
    const std::string decl = std::string("const ") + computeTypeName(n.dtype) + " " + name + " = ";
    if (bound) {
      loopLoads_.push_back(decl + loadFrom(n.dtype, "reduced[i - begin]") + ";  // " + e +
                           ", the reduced chunk");
    } else if (n.isScalar()) {
      scalarLoads_.push_back(decl + scalarField(n.dtype, "a.scalar[" + slotStr(s) + "]") + ";  // " + e);
    } else {
      loopLoads_.push_back(decl +
                           loadFrom(n.dtype, std::string("static_cast<const ") + storageTypeName(n.dtype) +
                                                 "*>(a.ptr[" + slotStr(s) + "])[i - a.base[" + slotStr(s) +
                                                 "]]") +
                           ";  // " + e);
    }
    return name;
  }

  // The current value of variable v; loads its entry value on first use.
  std::string readVar(int32_t v) {
    const int ver = version_[static_cast<size_t>(v)];
    const std::string name = vname(v, ver);
    if (ver > 0 || !loaded_.insert(name).second) return name;
    const Var& x = var(v);
    const std::string decl = std::string("const ") + computeTypeName(x.dtype) + " " + name + " = ";
    if (chunk_ && v == o_.reducedVar) {
      loopLoads_.push_back(decl + loadFrom(x.dtype, "reduced[i - begin]") + ";  // the reduced chunk");
    } else if (x.isScalar()) {
      scalarLoads_.push_back(decl + scalarField(x.dtype, "a.scalar[" + slotStr(v) + "]") + ";");
    } else {
      ptrUse_[static_cast<size_t>(v)] |= 1;
      loopLoads_.push_back(decl + loadFrom(x.dtype, x.name + "_p[" + index(v) + "]") + ";");
    }
    return name;
  }

  void statement(const ir::Stmt& st, bool readLater, bool readOutside) {
    const Var& x = var(st.var);
    const NodeId vid = st.value;
    const std::string comment = "// " + x.name + " = " + ir::printExpr(p_, vid);
    const Expr e = expr(vid);  // before the version bump: the value reads the old x
    // A declared half variable holds its value rounded (later reads see the stored value); a
    // direct store rounds anyway, so only locals need the explicit rounding.
    const bool declared = x.kind != ir::VarKind::Temp;
    const bool half = x.dtype == DType::F16 || x.dtype == DType::BF16;
    const std::string held = declared && half && !rounded(vid)
                                 ? std::string("fccl_to_") + ir::dtypeName(x.dtype) + "(" + e.text + ")"
                                 : e.text;
    const bool stored = declared || readOutside;
    const int ver = ++version_[static_cast<size_t>(st.var)];
    const std::string local = vname(st.var, ver);
    const std::string decl =
        std::string("const ") + computeTypeName(x.dtype) + " " + local + " = " + held + ";";
    std::vector<std::string>& lines = x.isScalar() ? scalarBody_ : loopBody_;
    lines.push_back(comment);
    if (x.isScalar()) {
      if (!readLater && !stored) {
        lines.push_back("// (never read: not computed)");
        return;
      }
      lines.push_back(decl);
      if (stored) {
        const bool intLike = ir::isInteger(x.dtype) || x.dtype == DType::Bool;
        lines.push_back("if (fccl_thread() == 0) a.result[" + slotStr(st.var) + "]." + (intLike ? "i" : "f") +
                        " = " + local + ";");
      }
      return;
    }
    if (!stored) {
      lines.push_back(readLater ? decl : "// (never read: not computed)");
      return;
    }
    ptrUse_[static_cast<size_t>(st.var)] |= 2;
    const std::string dst = x.name + "_p[" + index(st.var) + "]";
    if (readLater) {
      lines.push_back(decl);
      lines.push_back(dst + " = " + storeAs(x.dtype, local) + ";");
    } else {
      lines.push_back(dst + " = " + storeAs(x.dtype, e.text) + ";");
    }
  }

  std::string assemble() const {
    std::string out;
    std::string list;
    for (int32_t s : stmts_) list += (list.empty() ? "" : ", ") + std::to_string(s);
    out += "\n// Hook " + name_ + ": statements " + (list.empty() ? "(none)" : list) + " of " + p_.name +
           ", elementwise over logical elements [begin, end)";
    if (chunk_) {
      out += ";\n// a Fused step's reduced hook: reduced[k] is element begin + k of the chunk (" +
             (o_.reducedVar >= 0 ? var(o_.reducedVar).name : ir::printExpr(p_, o_.reducedNode)) + ")";
    }
    out += ".\n";
    const std::string rtype = std::string("const ") + storageTypeName(reducedType_) + "* reduced";
    const std::string params = std::string("const FcclHookArgs& a, ") + (chunk_ ? rtype + ", " : "") +
                               "long long begin, long long end";
    out += "__device__ void fccl_hook_" + name_ + "(" + params + ") {\n";
    for (size_t v = 0; v < p_.vars.size(); ++v) {
      if (!ptrUse_[v]) continue;
      const Var& x = p_.vars[v];
      const std::string c = ptrUse_[v] & 2 ? "" : "const ";
      out += "  " + c + storageTypeName(x.dtype) + "* const " + x.name + "_p = static_cast<" + c +
             storageTypeName(x.dtype) + "*>(a.ptr[" + std::to_string(v) + "]);\n";
      if (x.layout == ir::Layout::Sliced)
        out += "  const long long " + x.name + "_off = a.base[" + std::to_string(v) + "];\n";
    }
    for (const std::string& l : scalarLoads_) out += "  " + l + "\n";
    for (const std::string& l : scalarBody_) out += "  " + l + "\n";
    if (!loopBody_.empty()) {
      out += "  for (long long i = begin + fccl_thread(); i < end; i += fccl_nthreads()) {\n";
      for (const std::string& l : loopLoads_) out += "    " + l + "\n";
      for (const std::string& l : loopBody_) out += "    " + l + "\n";
      out += "  }\n";
    } else if (chunk_) {
      out += "  (void)reduced;\n";
    }
    if (loopBody_.empty()) out += "  (void)begin, (void)end;\n";
    out += "}\n";
    if (o_.kernel) {
      std::string args = "a, ";
      if (chunk_) args += "reduced, ";
      out += "extern \"C\" __global__ void fccl_kernel_" + name_ + "(" + std::string("const FcclHookArgs a") +
             (chunk_ ? ", " + rtype : "") + ", long long begin, long long end) {\n  fccl_hook_" + name_ +
             "(" + args + "begin, end);\n}\n";
    }
    return out;
  }

  const ir::Program& p_;
  const std::vector<int32_t>& stmts_;
  const EmitOptions& o_;
  const std::string name_;
  const bool chunk_;
  DType reducedType_ = DType::F32;
  std::vector<int> version_;  // per variable: assignments emitted so far
  std::vector<int> ptrUse_;   // per variable: 1 read from storage, 2 written to storage
  std::set<std::string> loaded_;
  std::vector<std::string> scalarLoads_, scalarBody_, loopLoads_, loopBody_;
};

}  // namespace

int32_t nodeSlot(const ir::Program& p, NodeId id) {
  if (id < 0 || static_cast<size_t>(id) >= p.nodes.size() || !materialized(p.node(id).op)) return -1;
  int32_t k = 0;
  for (NodeId j = 0; j < id; ++j) k += materialized(p.node(j).op) ? 1 : 0;
  return static_cast<int32_t>(p.vars.size()) + k;
}

std::string emitCuda(const ir::Program& p, const std::vector<int32_t>& stmts, const EmitOptions& o,
                     std::string* error) {
  std::string local, hook;
  if (!error) error = &local;
  HookEmitter e(p, stmts, o);
  if (!e.run(&hook, error)) return "";
  return (o.prelude ? cudaPrelude(p) : std::string()) + hook;
}

}  // namespace fccl::fusion::codegen
