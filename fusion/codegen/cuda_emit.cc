// cuda_emit.cc - one hook (cuda_emit.h) from a lowered pointwise form: the form has decided every
// type, cast and rounding point; this file spells each value as a CUDA expression (inlined into
// the statement that uses it) and places the statements: scalar ones become per-thread locals
// before the element loop (every thread computes the same values; scalar results are written by
// global thread 0), tensor ones one line each inside a grid-stride loop over [begin, end).
// Variables are renamed per assignment (m_0 on entry, m_1 after the first write ...), which
// keeps the program's sequential semantics when scalar statements are hoisted. A Load after a
// Store of the same variable reads the stored value from that statement's local (hooks assume
// their tensors do not overlap), rounded to the variable's dtype as the store rounds it.
#include <algorithm>
#include <set>

#include "fusion/codegen/cuda_emit.h"
#include "fusion/codegen/cuda_expr.h"
#include "fusion/ir/printer.h"
#include "fusion/ref/round.h"

namespace fccl::fusion::codegen {

using ir::DType;
using ir::Node;
using ir::NodeId;
using ir::Op;
using ir::Var;
using lowered::CT;
using lowered::Index;
using lowered::StmtKind;
using lowered::VOp;

namespace {

// A node whose value the hook reads from a slot instead of computing it elementwise.
bool materialized(Op op) {
  return ir::isWholeReduction(op) || (ir::isCollective(op) && op != Op::AllGather && op != Op::Slice);
}

// Variables read (Ref) anywhere in the value tree of a node.
void refsOf(const ir::Program& p, NodeId id, std::vector<char>* seen, std::vector<char>* vars) {
  if ((*seen)[static_cast<size_t>(id)]) return;
  (*seen)[static_cast<size_t>(id)] = 1;
  const Node& n = p.node(id);
  if (n.op == Op::Ref) (*vars)[static_cast<size_t>(n.var)] = 1;
  for (int i = 0; i < ir::opArity(n.op); ++i) refsOf(p, n.args[static_cast<size_t>(i)], seen, vars);
}

const char* typeOf(CT ct) { return computeTypeName(lowered::ctDType(ct)); }

class HookEmitter {
 public:
  HookEmitter(const ir::Program& p, const lowered::PointwiseForm& f, const EmitOptions& o)
      : p_(p),
        f_(f),
        o_(o),
        name_(o.name.empty() ? p.name : o.name),
        chunk_(o.kind != HookKind::Pointwise),
        element_(o.kind == HookKind::FusedElement) {}

  bool run(std::string* out, std::string* err) {
    if (!validate(err)) return false;
    const size_t nv = p_.vars.size();
    version_.assign(nv, 0);
    ptrUse_.assign(nv, 0);
    valueName_.assign(f_.values.size(), "");
    stmtLocal_.assign(f_.stmts.size(), "");
    for (size_t k = 0; k < f_.stmts.size(); ++k) {
      // Is the target read by a later statement of this hook (then it needs a local)?
      std::vector<char> seen(p_.nodes.size(), 0), later(nv, 0);
      for (size_t j = k + 1; j < f_.stmts.size(); ++j)
        refsOf(p_, p_.stmts[static_cast<size_t>(f_.stmts[j].irStmt)].value, &seen, &later);
      statement(k, later[static_cast<size_t>(f_.stmts[k].var)] != 0);
    }
    *out = assemble();
    return true;
  }

 private:
  bool validate(std::string* err) {
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
  const lowered::Value& value(int32_t v) const { return f_.values[static_cast<size_t>(v)]; }
  std::string vname(int32_t v, int ver) const { return var(v).name + "_" + std::to_string(ver); }
  std::string index(int32_t v) const {
    return var(v).layout == ir::Layout::Sliced ? "i - " + var(v).name + "_off" : "i";
  }

  // The C++ expression of form value v (in its compute type): a name once a statement bound it
  // to a local, else the value spelled out, operands inlined.
  Expr expr(int32_t v) {
    const std::string& bound = valueName_[static_cast<size_t>(v)];
    if (!bound.empty()) return {bound, 0};
    const lowered::Value& x = value(v);
    switch (x.op) {
      case VOp::Const:
        return literal(lowered::ctDType(x.ct), x.value);
      case VOp::Scalar:
        return {x.index == Index::NodeSlot ? slotLoad(x, false) : readScalar(x.var), 0};
      case VOp::Rank:
        return {"a.rank", 0};
      case VOp::NRanks:
        return {"a.nranks", 0};
      case VOp::Load:
        if (x.index == Index::NodeSlot || (x.index == Index::Chunk && x.var < 0))
          return {slotLoad(x, x.index == Index::Chunk), 0};
        if (x.storedBy >= 0) return {stmtLocal_[static_cast<size_t>(x.storedBy)], 0};
        return {readTensor(x.var, x.index == Index::Chunk), 0};
      case VOp::Cast:
        return convert(value(x.a[0]).ct, x.dtype, expr(x.a[0]));
      default:
        break;
    }
    Expr args[3];
    for (int i = 0; i < lowered::vopArity(x.op); ++i) args[i] = expr(x.a[static_cast<size_t>(i)]);
    return opExpr(x.op, value(x.a[0]).ct, args, "i");
  }

  // Whether value v is exactly representable in dtype t (a store or a cast to t changes nothing).
  bool exactIn(int32_t v, DType t) const {
    const lowered::Value& x = value(v);
    switch (x.op) {
      case VOp::Const:
        return ir::ref::roundTo(t, x.value) == x.value;
      case VOp::Cast:
      case VOp::Scalar:
      case VOp::Load:
        return x.dtype == t;
      case VOp::Select:
        return exactIn(x.a[1], t) && exactIn(x.a[2], t);
      default:
        return false;
    }
  }

  // A slot value (a collective or reduction computed before the hook), loaded once.
  std::string slotLoad(const lowered::Value& x, bool bound) {
    const Node& n = p_.node(x.node);
    const int32_t s = nodeSlot(p_, x.node);
    const std::string name = "slot" + std::to_string(s);
    if (!loaded_.insert(name).second) return name;
    std::string e = ir::printExpr(p_, x.node);
    if (e.size() > 60) e = e.substr(0, 57) + "...";
    const std::string decl = std::string("const ") + computeTypeName(n.dtype) + " " + name + " = ";
    if (bound) {
      loopLoads_.push_back(decl + loadFrom(n.dtype, "reduced[i - begin]") + ";  // " + e +
                           ", the reduced chunk");
    } else if (n.isScalar()) {
      scalarLoads_.push_back(decl + scalarField(n.dtype, "a.scalar[" + std::to_string(s) + "]") + ";  // " +
                             e);
    } else {
      loopLoads_.push_back(decl +
                           loadFrom(n.dtype, std::string("static_cast<const ") + storageTypeName(n.dtype) +
                                                 "*>(a.ptr[" + std::to_string(s) + "])[i - a.base[" +
                                                 std::to_string(s) + "]]") +
                           ";  // " + e);
    }
    return name;
  }

  // A scalar variable's value on entry, loaded once.
  std::string readScalar(int32_t v) {
    const std::string name = vname(v, 0);
    if (!loaded_.insert(name).second) return name;
    const Var& x = var(v);
    scalarLoads_.push_back(std::string("const ") + computeTypeName(x.dtype) + " " + name + " = " +
                           scalarField(x.dtype, "a.scalar[" + std::to_string(v) + "]") + ";");
    return name;
  }

  // A tensor variable's element i on entry (or the reduced chunk's), loaded once per element.
  std::string readTensor(int32_t v, bool reduced) {
    const std::string name = vname(v, 0);
    if (!loaded_.insert(name).second) return name;
    const Var& x = var(v);
    const std::string decl = std::string("const ") + computeTypeName(x.dtype) + " " + name + " = ";
    if (reduced) {
      loopLoads_.push_back(decl + loadFrom(x.dtype, "reduced[i - begin]") + ";  // the reduced chunk");
    } else {
      ptrUse_[static_cast<size_t>(v)] |= 1;
      loopLoads_.push_back(decl + loadFrom(x.dtype, x.name + "_p[" + index(v) + "]") + ";");
    }
    return name;
  }

  void statement(size_t k, bool readLater) {
    const lowered::Stmt& st = f_.stmts[k];
    const Var& x = var(st.var);
    const NodeId root = p_.stmts[static_cast<size_t>(st.irStmt)].value;
    // "line N:" names the statement's line in the program text: NVRTC's messages about the code
    // below are traced back to it (nvrtc_compile.h annotateProgramLines).
    const ir::Loc loc = p_.stmts[static_cast<size_t>(st.irStmt)].loc;
    const std::string comment = "// " +
                                (loc.line > 0 ? "line " + std::to_string(loc.line) + ": " : std::string()) +
                                x.name + " = " + ir::printExpr(p_, root);
    const Expr e = expr(st.value);  // before the version bump: the value reads the old x
    // A declared tensor read again later holds its value as stored (rounded to its dtype).
    const std::string held = st.kind == StmtKind::Store && !exactIn(st.value, st.dtype)
                                 ? convert(value(st.value).ct, st.dtype, e).text
                                 : e.text;
    const bool stored = x.kind != ir::VarKind::Temp || st.readOutside;
    const int ver = ++version_[static_cast<size_t>(st.var)];
    const std::string local = vname(st.var, ver);
    const std::string decl =
        std::string("const ") + typeOf(value(st.value).ct) + " " + local + " = " + held + ";";
    std::vector<std::string>& lines = x.isScalar() ? scalarBody_ : loopBody_;
    lines.push_back(comment);
    auto bind = [&] {
      stmtLocal_[k] = local;
      if (st.kind != StmtKind::Store && valueName_[static_cast<size_t>(st.value)].empty())
        valueName_[static_cast<size_t>(st.value)] = local;  // later statements use the local
    };
    if (x.isScalar()) {
      const bool written = stored && o_.scalarResults;  // else the host computes the result
      if (!readLater && !written) {
        lines.push_back(stored ? "// (a scalar result: computed by the host)"
                               : "// (never read: not computed)");
        return;
      }
      lines.push_back(decl);
      bind();
      if (written) {
        const bool intLike = ir::isInteger(x.dtype) || x.dtype == DType::Bool;
        lines.push_back("if (fccl_thread() == 0) a.result[" + std::to_string(st.var) + "]." +
                        (intLike ? "i" : "f") + " = " + local + ";");
      }
      return;
    }
    if (!stored) {
      lines.push_back(readLater ? decl : "// (never read: not computed)");
      if (readLater) bind();
      return;
    }
    ptrUse_[static_cast<size_t>(st.var)] |= 2;
    const std::string dst = x.name + "_p[" + index(st.var) + "]";
    if (readLater) {
      lines.push_back(decl);
      bind();
      lines.push_back(dst + " = " + storeAs(x.dtype, local) + ";");
    } else {
      lines.push_back(dst + " = " + storeAs(x.dtype, e.text) + ";");
    }
  }

  // FusedElement: the loop body for the one element i; `reduced[i - begin]` (the chunk loads)
  // reads *reduced because begin is i.
  std::string elementFunction(const std::string& rtype) const {
    std::string out = "__device__ __forceinline__ void fccl_elem_" + name_ + "(const FcclHookArgs& a, " +
                      rtype + ", long long i) {\n  const long long begin = i;\n";
    out += pointerDecls();
    for (const std::string& l : scalarLoads_) out += "  " + l + "\n";
    for (const std::string& l : scalarBody_) out += "  " + l + "\n";
    for (const std::string& l : loopLoads_) out += "  " + l + "\n";
    for (const std::string& l : loopBody_) out += "  " + l + "\n";
    out += "  (void)a, (void)reduced, (void)begin;\n}\n";
    return out;
  }

  std::string pointerDecls() const {
    std::string out;
    for (size_t v = 0; v < p_.vars.size(); ++v) {
      if (!ptrUse_[v]) continue;
      const Var& x = p_.vars[v];
      const std::string c = ptrUse_[v] & 2 ? "" : "const ";
      out += "  " + c + storageTypeName(x.dtype) + "* const " + x.name + "_p = static_cast<" + c +
             storageTypeName(x.dtype) + "*>(a.ptr[" + std::to_string(v) + "]);\n";
      if (x.layout == ir::Layout::Sliced)
        out += "  const long long " + x.name + "_off = a.base[" + std::to_string(v) + "];\n";
    }
    return out;
  }

  std::string assemble() const {
    std::string out;
    std::string list;
    for (int32_t s : f_.irStmts) list += (list.empty() ? "" : ", ") + std::to_string(s);
    out += "\n// Hook " + name_ + ": statements " + (list.empty() ? "(none)" : list) + " of " + p_.name +
           ", elementwise over logical elements [begin, end)";
    if (chunk_) {
      out += ";\n// a Fused step's reduced hook: reduced[k] is element begin + k of the chunk (" +
             (o_.reducedVar >= 0 ? var(o_.reducedVar).name : ir::printExpr(p_, o_.reducedNode)) + ")";
    }
    out += ".\n";
    const std::string rtype = std::string("const ") + storageTypeName(reducedType_) + "* reduced";
    if (element_) return out + elementFunction(rtype);
    const std::string params = std::string("const FcclHookArgs& a, ") + (chunk_ ? rtype + ", " : "") +
                               "long long begin, long long end";
    out += "__device__ void fccl_hook_" + name_ + "(" + params + ") {\n";
    out += pointerDecls();
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
  const lowered::PointwiseForm& f_;
  const EmitOptions& o_;
  const std::string name_;
  const bool chunk_;
  const bool element_;  // one element, no loop (HookKind::FusedElement)
  DType reducedType_ = DType::F32;
  std::vector<int> version_;            // per variable: assignments emitted so far
  std::vector<int> ptrUse_;             // per variable: 1 read from storage, 2 written to storage
  std::vector<std::string> valueName_;  // per form value: the local a statement bound it to
  std::vector<std::string> stmtLocal_;  // per form statement: its local ("" when none)
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

std::string emitCuda(const ir::Program& p, const lowered::PointwiseForm& f, const EmitOptions& o,
                     std::string* error) {
  std::string local, hook;
  if (!error) error = &local;
  HookEmitter e(p, f, o);
  if (!e.run(&hook, error)) return "";
  return (o.prelude ? cudaPrelude(p) : std::string()) + hook;
}

std::string emitCuda(const ir::Program& p, const std::vector<int32_t>& stmts, const EmitOptions& o,
                     std::string* error) {
  std::string local;
  if (!error) error = &local;
  for (int32_t s : stmts) {
    if (s < 0 || static_cast<size_t>(s) >= p.stmts.size()) {
      *error = "statement index " + std::to_string(s) + " is out of range";
      return "";
    }
  }
  lowered::FormOptions fo;
  fo.nodeSlots = true;  // a program that was not lowered: collectives inside expressions are slots
  const bool chunk = o.kind != HookKind::Pointwise;
  fo.chunkVar = chunk ? o.reducedVar : -1;
  fo.chunkNode = chunk ? o.reducedNode : ir::kNoNode;
  lowered::PointwiseForm f;
  if (!lowered::buildForm(p, stmts, fo, &f, error)) return "";
  return emitCuda(p, f, o, error);
}

}  // namespace fccl::fusion::codegen
