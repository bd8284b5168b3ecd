// interpreter.cc - the reference semantics (interpreter.h). Deliberately simple: every node of a
// statement is evaluated for every rank into a vector in the value's storage form (sliced:
// this rank's part), in arena order. Speed does not matter; obviousness does.
#include "fusion/ref/interpreter.h"

#include <algorithm>
#include <cmath>

#include "fusion/ir/dropout.h"
#include "fusion/ref/round.h"

namespace fccl::ir::ref {

namespace {

using Vec = std::vector<double>;
using PerRank = std::vector<Vec>;

class Interp {
 public:
  Interp(const Program& p, const Inputs& in, std::string* err) : p_(p), in_(in), err_(*err) {}

  bool run(Outputs* out) {
    n_ = in_.nranks;
    if (n_ <= 0) return fail("nranks must be positive");
    if (static_cast<int>(in_.tensors.size()) != n_ && !in_.tensors.empty())
      return fail("inputs.tensors has " + std::to_string(in_.tensors.size()) + " ranks, nranks is " +
                  std::to_string(n_));
    for (const std::string& s : p_.symbols) {
      auto it = in_.symbols.find(s);
      if (it == in_.symbols.end() || it->second < 0) return fail("shape symbol " + s + " is not bound");
      if (it->second > (int64_t{1} << 30))  // a reference run on tiny inputs; no overflow
        return fail("shape symbol " + s + " is too large for the reference interpreter");
    }
    vars_.assign(p_.vars.size(), PerRank(static_cast<size_t>(n_)));
    for (size_t i = 0; i < p_.vars.size(); ++i)
      if (!bindInput(i)) return false;
    vals_.assign(p_.nodes.size(), PerRank());
    for (const Stmt& s : p_.stmts)
      if (!statement(s)) return false;
    out->tensors.assign(static_cast<size_t>(n_), {});
    out->scalars.assign(static_cast<size_t>(n_), {});
    for (size_t i = 0; i < p_.vars.size(); ++i) {
      const Var& v = p_.vars[i];
      if (v.kind == VarKind::Temp || v.kind == VarKind::Scalar) continue;
      for (int r = 0; r < n_; ++r) {
        const Vec& d = vars_[i][static_cast<size_t>(r)];
        if (v.isScalar())
          out->scalars[static_cast<size_t>(r)][v.name] = d.empty() ? 0 : d[0];
        else
          out->tensors[static_cast<size_t>(r)][v.name] = d;
      }
    }
    return true;
  }

 private:
  bool fail(std::string m) {
    err_ = std::move(m);
    return false;
  }
  int64_t total(const Shape& s) const {
    int64_t t = 1;
    for (const Dim& d : s) t *= d.sym >= 0 ? in_.symbols.at(p_.symbols[static_cast<size_t>(d.sym)]) : d.size;
    return t;
  }
  // Storage length and first global index of a value of (shape, layout) on rank r.
  int64_t length(const Shape& s, Layout l, int r) const {
    if (s.empty()) return 1;
    return l == Layout::Sliced ? sliceRange(total(s), r, n_).size() : total(s);
  }
  int64_t offset(const Shape& s, Layout l, int r) const {
    return !s.empty() && l == Layout::Sliced ? sliceRange(total(s), r, n_).begin : 0;
  }

  bool bindInput(size_t i) {
    const Var& v = p_.vars[i];
    PerRank& dst = vars_[i];
    if (v.kind == VarKind::Scalar || (v.kind == VarKind::InOut && v.isScalar())) {
      auto it = in_.scalars.find(v.name);
      if (it == in_.scalars.end()) return fail("scalar '" + v.name + "' is not given");
      for (Vec& d : dst) d = {roundTo(v.dtype, it->second)};
      return true;
    }
    if (v.kind == VarKind::Temp) return true;
    for (int r = 0; r < n_; ++r) {
      const int64_t len = length(v.shape, v.layout, r);
      Vec& d = dst[static_cast<size_t>(r)];
      if (v.kind == VarKind::Out) {
        d.assign(static_cast<size_t>(len), 0.0);
        continue;
      }
      const Vec* src = nullptr;
      if (!in_.tensors.empty()) {
        const TensorMap& m = in_.tensors[static_cast<size_t>(r)];
        auto it = m.find(v.name);
        if (it != m.end()) src = &it->second;
        if (!src && v.layout == Layout::Replicated) {
          auto it0 = in_.tensors[0].find(v.name);
          if (it0 != in_.tensors[0].end()) src = &it0->second;
        }
      }
      if (!src) return fail("tensor '" + v.name + "' is not given for rank " + std::to_string(r));
      if (static_cast<int64_t>(src->size()) != len)
        return fail("tensor '" + v.name + "' on rank " + std::to_string(r) + " has " +
                    std::to_string(src->size()) + " elements, expected " + std::to_string(len));
      d.resize(src->size());
      for (size_t k = 0; k < d.size(); ++k) d[k] = roundTo(v.dtype, (*src)[k]);
      if (v.layout == Layout::Replicated && r > 0 && d != dst[0])
        return fail("replicated tensor '" + v.name + "' differs between rank 0 and rank " +
                    std::to_string(r));
    }
    return true;
  }

  bool statement(const Stmt& s) {
    std::vector<NodeId> todo{s.value}, ids;
    std::vector<char> seen(p_.nodes.size(), 0);
    while (!todo.empty()) {
      const NodeId id = todo.back();
      todo.pop_back();
      if (seen[static_cast<size_t>(id)]) continue;
      seen[static_cast<size_t>(id)] = 1;
      ids.push_back(id);
      for (int i = 0; i < opArity(p_.node(id).op); ++i)
        todo.push_back(p_.node(id).args[static_cast<size_t>(i)]);
    }
    std::sort(ids.begin(), ids.end());
    for (NodeId id : ids)
      if (!eval(id)) return false;
    // Store: fill scalars into tensors, round declared variables to their dtype.
    const Var& v = p_.vars[static_cast<size_t>(s.var)];
    const Node& val = p_.node(s.value);
    PerRank& dst = vars_[static_cast<size_t>(s.var)];
    for (int r = 0; r < n_; ++r) {
      const Vec& src = vals_[static_cast<size_t>(s.value)][static_cast<size_t>(r)];
      Vec& d = dst[static_cast<size_t>(r)];
      if (v.kind == VarKind::Temp) {
        d = src;
        continue;
      }
      d.resize(static_cast<size_t>(length(v.shape, v.layout, r)));
      for (size_t k = 0; k < d.size(); ++k) d[k] = roundTo(v.dtype, val.isScalar() ? src[0] : src[k]);
    }
    for (NodeId id : ids) vals_[static_cast<size_t>(id)].clear();
    return true;
  }

  double reduceOp(RedOp op, const std::vector<double>& xs) const {
    double acc = xs[0];
    for (size_t i = 1; i < xs.size(); ++i) {
      switch (op) {
        case RedOp::Sum:
        case RedOp::Avg:
          acc += xs[i];
          break;
        case RedOp::Prod:
          acc *= xs[i];
          break;
        case RedOp::Min:
          acc = std::fmin(acc, xs[i]);
          break;
        case RedOp::Max:
          acc = std::fmax(acc, xs[i]);
          break;
      }
    }
    return op == RedOp::Avg ? acc / n_ : acc;
  }

  // Elementwise reduction across ranks of operand values (all ranks hold equal-length data).
  Vec acrossRanks(RedOp op, const PerRank& x) const {
    Vec out(x[0].size());
    std::vector<double> xs(static_cast<size_t>(n_));
    for (size_t k = 0; k < out.size(); ++k) {
      for (int r = 0; r < n_; ++r) xs[static_cast<size_t>(r)] = x[static_cast<size_t>(r)][k];
      out[k] = reduceOp(op, xs);
    }
    return out;
  }

  bool rootOf(NodeId id, int* root) {
    const double v = vals_[static_cast<size_t>(id)][0][0];
    if (!(v >= 0 && v < n_) || v != std::trunc(v))
      return fail("root " + std::to_string(v) + " is not a rank in [0, " + std::to_string(n_) + ")");
    *root = static_cast<int>(v);
    return true;
  }

  bool eval(NodeId id) {
    const Node& n = p_.node(id);
    PerRank& out = vals_[static_cast<size_t>(id)];
    out.assign(static_cast<size_t>(n_), {});
    auto arg = [&](int i) -> const PerRank& {
      return vals_[static_cast<size_t>(n.args[static_cast<size_t>(i)])];
    };
    const int64_t all = n.isScalar() ? 1 : total(n.shape);
    switch (n.op) {
      case Op::Ref:
        out = vars_[static_cast<size_t>(n.var)];
        return true;
      case Op::AllReduce: {
        Vec v = acrossRanks(n.redop, arg(0));
        for (Vec& o : out) o = v;
        return true;
      }
      case Op::ReduceScatter: {
        Vec v = acrossRanks(n.redop, arg(0));
        for (int r = 0; r < n_; ++r) {
          const SliceRange s = sliceRange(all, r, n_);
          out[static_cast<size_t>(r)].assign(v.begin() + s.begin, v.begin() + s.end);
        }
        return true;
      }
      case Op::AllGather: {
        Vec v;
        for (const Vec& part : arg(0)) v.insert(v.end(), part.begin(), part.end());
        for (Vec& o : out) o = v;
        return true;
      }
      case Op::Broadcast: {
        int root = 0;
        if (!rootOf(n.args[1], &root)) return false;
        for (Vec& o : out) o = arg(0)[static_cast<size_t>(root)];
        return true;
      }
      case Op::Reduce: {
        int root = 0;
        if (!rootOf(n.args[1], &root)) return false;
        out = arg(0);
        out[static_cast<size_t>(root)] = acrossRanks(n.redop, arg(0));
        return true;
      }
      case Op::Slice:
        for (int r = 0; r < n_; ++r) {
          const SliceRange s = sliceRange(all, r, n_);
          const Vec& x = arg(0)[static_cast<size_t>(r)];
          out[static_cast<size_t>(r)].assign(x.begin() + s.begin, x.begin() + s.end);
        }
        return true;
      case Op::Norm:
      case Op::Sum:
      case Op::MaxAll:
      case Op::AnyNonfinite: {
        Vec part(static_cast<size_t>(n_));
        for (int r = 0; r < n_; ++r) {
          double acc = n.op == Op::MaxAll ? -INFINITY : 0;
          for (double x : arg(0)[static_cast<size_t>(r)]) {
            if (n.op == Op::Norm)
              acc += x * x;
            else if (n.op == Op::Sum)
              acc += x;
            else if (n.op == Op::MaxAll)
              acc = std::fmax(acc, x);
            else
              acc = acc != 0 || !std::isfinite(x) ? 1 : 0;
          }
          part[static_cast<size_t>(r)] = acc;
        }
        if (n.crossRank) {  // per-slice partials, then the tiny allreduce
          const double g = reduceOp(n.op == Op::MaxAll ? RedOp::Max : RedOp::Sum, part);
          std::fill(part.begin(), part.end(), n.op == Op::AnyNonfinite ? (g != 0 ? 1 : 0) : g);
        }
        for (int r = 0; r < n_; ++r) {
          const double v = part[static_cast<size_t>(r)];
          out[static_cast<size_t>(r)] = {n.op == Op::Norm ? std::sqrt(v) : v};
        }
        return true;
      }
      default:
        break;
    }
    // Pointwise (and leaves): element k of this rank's storage is global element off + k.
    const int k = opArity(n.op);
    for (int r = 0; r < n_; ++r) {
      const int64_t len = length(n.shape, n.layout, r), off = offset(n.shape, n.layout, r);
      Vec& o = out[static_cast<size_t>(r)];
      o.resize(static_cast<size_t>(len));
      double a[3] = {0, 0, 0};
      for (int64_t e = 0; e < len; ++e) {
        const int64_t g = off + e;
        for (int i = 0; i < k; ++i) {
          const Node& an = p_.node(n.args[static_cast<size_t>(i)]);
          const Vec& av = arg(i)[static_cast<size_t>(r)];
          const int64_t idx = an.isScalar() ? 0 : g - offset(an.shape, an.layout, r);
          a[i] = av[static_cast<size_t>(idx)];
        }
        o[static_cast<size_t>(e)] = pointwise(n, a, g, r);
      }
    }
    return true;
  }

  double pointwise(const Node& n, const double* a, int64_t g, int r) const {
    const bool integer = isInteger(n.dtype);
    switch (n.op) {
      case Op::Literal:
        return n.value;
      case Op::NRanks:
        return n_;
      case Op::Rank:
        return r;
      case Op::Neg:
        return -a[0];
      case Op::Not:
        return a[0] == 0 ? 1 : 0;
      case Op::Sqrt:
        return std::sqrt(a[0]);
      case Op::Rsqrt:
        return 1 / std::sqrt(a[0]);
      case Op::Exp:
        return std::exp(a[0]);
      case Op::Log:
        return std::log(a[0]);
      case Op::Abs:
        return std::fabs(a[0]);
      case Op::IsFinite:
        return std::isfinite(a[0]) ? 1 : 0;
      case Op::Cast:
        return roundTo(n.dtype, a[0]);
      case Op::Add:
        return a[0] + a[1];
      case Op::Sub:
        return a[0] - a[1];
      case Op::Mul:
        return a[0] * a[1];
      case Op::Div:
        if (integer) return a[1] == 0 ? 0 : std::trunc(a[0] / a[1]);
        return a[0] / a[1];
      case Op::Pow:
        return std::pow(a[0], a[1]);
      case Op::Min:
        return std::fmin(a[0], a[1]);
      case Op::Max:
        return std::fmax(a[0], a[1]);
      case Op::Lt:
        return a[0] < a[1];
      case Op::Le:
        return a[0] <= a[1];
      case Op::Gt:
        return a[0] > a[1];
      case Op::Ge:
        return a[0] >= a[1];
      case Op::Eq:
        return a[0] == a[1];
      case Op::Ne:
        return a[0] != a[1];
      case Op::And:
        return a[0] != 0 && a[1] != 0;
      case Op::Or:
        return a[0] != 0 || a[1] != 0;
      case Op::Select:
        return a[0] != 0 ? a[1] : a[2];
      case Op::Dropout: {
        const double s = roundTo(DType::I64, a[2]);
        return dropoutApply(a[0], a[1], static_cast<unsigned long long>(static_cast<long long>(s)),
                            static_cast<unsigned long long>(g));
      }
      default:
        return 0;  // collectives and reductions are handled in eval()
    }
  }

  const Program& p_;
  const Inputs& in_;
  std::string& err_;
  int n_ = 0;
  std::vector<PerRank> vars_;  // per var, per rank, storage form
  std::vector<PerRank> vals_;  // per node of the current statement
};

}  // namespace

bool run(const Program& p, const Inputs& in, Outputs* out, std::string* error) {
  std::string local;
  Interp it(p, in, error ? error : &local);
  return it.run(out);
}

}  // namespace fccl::ir::ref
