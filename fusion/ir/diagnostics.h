// diagnostics.h - collected errors of the parser, checker and verifier, each rendered as
// "SOURCE:LINE:COL: message". Stages append and keep going where recovery is easy; nothing
// throws. The list is capped so hostile input cannot make it grow without bound.
#pragma once

#include <string>
#include <vector>

#include "fusion/ir/ir.h"

namespace fccl::ir {

struct Diagnostic {
  Loc loc;
  std::string message;
};

class Diagnostics {
 public:
  static constexpr size_t kMaxErrors = 50;

  explicit Diagnostics(std::string source = "<string>") : source_(std::move(source)) {}

  void error(Loc loc, std::string message) {
    if (list_.size() < kMaxErrors) list_.push_back({loc, std::move(message)});
    ++count_;
  }
  bool hasErrors() const { return count_ > 0; }
  size_t count() const { return count_; }
  const std::vector<Diagnostic>& list() const { return list_; }
  const std::string& source() const { return source_; }

  // One diagnostic as "SOURCE:LINE:COL: message".
  std::string format(const Diagnostic& d) const {
    return source_ + ":" + std::to_string(d.loc.line) + ":" + std::to_string(d.loc.col) + ": " + d.message;
  }
  // All of them, one per line (plus a count of those dropped past kMaxErrors).
  std::string str() const {
    std::string out;
    for (const Diagnostic& d : list_) out += format(d) + "\n";
    if (count_ > list_.size())
      out += source_ + ": " + std::to_string(count_ - list_.size()) + " more errors\n";
    return out;
  }

 private:
  std::string source_;
  std::vector<Diagnostic> list_;
  size_t count_ = 0;
};

}  // namespace fccl::ir
