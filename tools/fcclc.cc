// fcclc.cc - command-line driver of the fusion compiler: parse, check, run the pass pipeline
// (default split,reorder,fuse,overlap, or --schedule=LIST) and lower a .fccl program - a file,
// or a stock program by name (fusion/stock: `fcclc adam`); print the IR after any stage, the
// schedule, each step's lowered pointwise form (--print-lowered), or the generated CUDA
// (--emit=cuda). Exit 0 on success, 1 with file:line:col diagnostics on stderr for a bad
// program, 2 for bad usage.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "fusion/check/checker.h"
#include "fusion/codegen/cuda_emit.h"
#include "fusion/ir/printer.h"
#include "fusion/lowered/schedule.h"
#include "fusion/parse/parser.h"
#include "fusion/passes/lower.h"
#include "fusion/passes/registry.h"
#include "fusion/stock/stock.h"

namespace {

using fccl::ir::Diagnostics;
using fccl::ir::Program;

// The pipeline, in order. Each stage transforms the program in place and reports errors to
// diags; --print-ir-after names stages from this table, so a pass plugs in by adding a row.
struct Stage {
  const char* name;
  const char* summary;
  std::function<bool(Program&, Diagnostics&)> run;  // parse is special-cased (text -> IR)
};

// parse and check, then one stage per pass of the pipeline, then "schedule" (the lowering).
std::vector<Stage> pipeline(const std::vector<std::string>& passes) {
  std::vector<Stage> stages = {
      {"parse", "text -> untyped IR", nullptr},
      {"check", "types, shapes, layouts; implicit casts, gathers, slices",
       [](Program& p, Diagnostics& d) {
         auto c = fccl::ir::check::check(p, d);
         if (!c) return false;
         p = std::move(*c);
         return true;
       }},
  };
  for (const std::string& name : passes) {
    const auto* info = fccl::fusion::passes::findPass(name);
    stages.push_back({info ? info->name : "?", info ? info->summary : "", nullptr});
  }
  stages.push_back({"schedule", "lowering: the steps the runtime executes", nullptr});
  return stages;
}

int usage(const char* msg) {
  if (msg) std::fprintf(stderr, "fcclc: %s\n", msg);
  std::fprintf(stderr,
               "usage: fcclc [options] FILE.fccl | NAME   (FILE '-' reads stdin; NAME: a stock program)\n"
               "  --print-ir-after=STAGE[,STAGE]  print the IR after these stages "
               "(default: the last)\n"
               "  --print-ir-after-all            print the IR after every stage\n"
               "  --annotate                      add '# type layout' to every statement\n"
               "  --schedule=LIST                 passes to run: default (split,reorder,fuse,overlap),\n"
               "                                  none, or a comma list of pass names\n"
               "  --emit=cuda                     print the generated CUDA C++ of the hooks\n"
               "  --print-lowered                 print each step's lowered pointwise form (what the\n"
               "                                  tile VM, the JIT and the CUDA emitter translate)\n"
               "  --ranks N --bind SYM=VALUE ...  show each sliced tensor's per-rank range\n"
               "  --list-stages                   list the stages\n"
               "  --list-stock                    list the stock programs (fcclc NAME compiles one)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> passes = fccl::fusion::passes::defaultPipeline();
  for (int i = 1; i < argc; ++i) {  // the schedule decides which stages exist
    std::string a = argv[i];
    if (a.rfind("--schedule=", 0) == 0) {
      std::string err;
      if (!fccl::fusion::passes::parsePipeline(a.substr(11), &passes, &err)) return usage(err.c_str());
    }
  }
  std::vector<Stage> stages = pipeline(passes);
  bool emitCuda = false, printLowered = false;
  std::vector<std::string> printAfter;
  bool all = false, annotate = false;
  int ranks = 0;
  std::map<std::string, int64_t> binds;
  std::string file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& flag) -> const char* {
      if (a.rfind(flag + "=", 0) == 0) return argv[i] + flag.size() + 1;
      if (a == flag && i + 1 < argc) return argv[++i];
      return nullptr;
    };
    if (const char* v = value("--print-ir-after")) {
      std::stringstream ss(v);
      for (std::string s; std::getline(ss, s, ',');) {
        bool known = false;
        for (const Stage& st : stages) known |= s == st.name;
        if (!known) return usage(("unknown stage '" + s + "' (see --list-stages)").c_str());
        printAfter.push_back(s);
      }
    } else if (a == "--print-ir-after-all") {
      all = true;
    } else if (a.rfind("--schedule=", 0) == 0) {
      // handled above
    } else if (const char* v = value("--emit")) {
      if (std::string(v) != "cuda") return usage("--emit takes: cuda");
      emitCuda = true;
    } else if (a == "--print-lowered") {
      printLowered = true;
    } else if (a == "--annotate") {
      annotate = true;
    } else if (a == "--list-stock") {
      for (const std::string& n : fccl::fusion::stock::names()) std::printf("%s\n", n.c_str());
      return 0;
    } else if (a == "--list-stages") {
      for (const Stage& st : stages) std::printf("%-8s %s\n", st.name, st.summary);
      return 0;
    } else if (const char* v = value("--ranks")) {
      ranks = std::atoi(v);
      if (ranks <= 0) return usage("--ranks needs a positive integer");
    } else if (const char* v = value("--bind")) {
      std::string b = v;
      size_t eq = b.find('=');
      char* end = nullptr;
      long long n = eq == std::string::npos ? -1 : std::strtoll(b.c_str() + eq + 1, &end, 10);
      if (eq == std::string::npos || n < 0 || *end) return usage("--bind needs SYM=COUNT");
      binds[b.substr(0, eq)] = n;
    } else if (a == "-h" || a == "--help") {
      return usage(nullptr);
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      return usage(("unknown option " + a).c_str());
    } else if (file.empty()) {
      file = a;
    } else {
      return usage("one input file only");
    }
  }
  if (file.empty()) return usage("no input file");
  std::stringstream text;
  std::string source = file;
  if (file == "-") {
    text << std::cin.rdbuf();
    source = "<stdin>";
  } else if (std::ifstream in(file, std::ios::binary); in) {
    text << in.rdbuf();
  } else if (const char* stock = fccl::fusion::stock::find(file)) {
    text << stock;  // not a file: a stock program by name
    source = file + ".fccl";
  } else {
    std::fprintf(stderr, "fcclc: cannot read %s (nor is it a stock program: see --list-stock)\n",
                 file.c_str());
    return 1;
  }
  Diagnostics diags(source);
  fccl::ir::PrintOptions po;
  po.annotate = annotate;
  auto wants = [&](const char* name) {
    if (all) return true;
    for (const std::string& s : printAfter)
      if (s == name) return true;
    return printAfter.empty() && name == stages.back().name;
  };
  auto parsed = fccl::ir::parse::parseProgram(text.str(), diags);
  if (!parsed) {
    std::fputs(diags.str().c_str(), stderr);
    return 1;
  }
  Program p = std::move(*parsed);
  auto show = [&](const char* name, const std::string& text) {
    if (emitCuda || !wants(name)) return;
    if (all || printAfter.size() > 1) std::printf("// ----- IR after %s\n", name);
    std::fputs(text.c_str(), stdout);
  };
  for (size_t i = 0; i < 2; ++i) {  // parse, check
    if (stages[i].run && !stages[i].run(p, diags)) {
      std::fputs(diags.str().c_str(), stderr);
      return 1;
    }
    show(stages[i].name, fccl::ir::print(p, po));
  }
  fccl::fusion::Schedule schedule;
  std::vector<std::string> dumps;
  std::string err;
  if (!fccl::fusion::lower(p, passes, &schedule, &dumps, &err)) {
    std::fprintf(stderr, "%s: %s\n", diags.source().c_str(), err.c_str());
    return 1;
  }
  for (size_t i = 0; i < passes.size() && i < dumps.size(); ++i) show(stages[2 + i].name, dumps[i]);
  show("schedule", fccl::fusion::printSchedule(schedule));
  if (printLowered) {
    for (size_t k = 0; k < schedule.steps.size(); ++k) {
      const fccl::fusion::Step& st = schedule.steps[k];
      if (st.kind != fccl::fusion::StepKind::Pointwise && st.kind != fccl::fusion::StepKind::Fused) continue;
      std::printf("// ----- lowered form of step %zu (%s)\n%s", k, fccl::fusion::stepKindName(st.kind),
                  fccl::fusion::lowered::printForm(schedule.program, st.form).c_str());
    }
  }
  if (emitCuda) {
    std::string cuda = fccl::fusion::codegen::emitScheduleCuda(schedule, &err);
    if (cuda.empty()) {
      std::fprintf(stderr, "%s: %s\n", diags.source().c_str(), err.c_str());
      return 1;
    }
    std::fputs(cuda.c_str(), stdout);
  }
  if (ranks > 0) {
    for (const fccl::ir::Var& v : p.vars) {
      if (v.layout != fccl::ir::Layout::Sliced || v.kind == fccl::ir::VarKind::Temp) continue;
      int64_t total = 1;
      for (const fccl::ir::Dim& d : v.shape) {
        if (d.sym < 0) {
          total *= d.size;
          continue;
        }
        auto it = binds.find(p.symbols[static_cast<size_t>(d.sym)]);
        if (it == binds.end()) {
          std::fprintf(stderr, "fcclc: symbol %s is not bound (--bind %s=COUNT)\n",
                       p.symbols[static_cast<size_t>(d.sym)].c_str(),
                       p.symbols[static_cast<size_t>(d.sym)].c_str());
          return 1;
        }
        total *= it->second;
      }
      std::printf("# %s: %lld elements sliced over %d ranks:", v.name.c_str(), static_cast<long long>(total),
                  ranks);
      for (int r = 0; r < ranks; ++r) {
        fccl::ir::SliceRange s = fccl::ir::sliceRange(total, r, ranks);
        std::printf(" [%lld,%lld)", static_cast<long long>(s.begin), static_cast<long long>(s.end));
      }
      std::printf("\n");
    }
  }
  return 0;
}
