// options.cc - the flag table (options.h) and the one parser and usage printer built from it.
#include "options.h"

#include <getopt.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fccl::perf {

namespace {

const Choice kOpChoices[] = {{"sum", 0}, {"prod", 1},   {"max", 2},  {"min", 3},
                             {"avg", 4}, {"mulsum", 5}, {"all", -1}, {nullptr, 0}};
// kTypes' order (common.h); the aliases are nccl-tests'.
const Choice kTypeChoices[] = {{"int8", 0},           {"uint8", 1},          {"int32", 2},
                               {"uint32", 3},         {"int64", 4},          {"uint64", 5},
                               {"half", 6},           {"float", 7},          {"double", 8},
                               {"bfloat16", 9},       {"all", -1},           {"char", 0, false},
                               {"int", 2, false},     {"float16", 6, false}, {"float32", 7, false},
                               {"float64", 8, false}, {"bf16", 9, false},    {nullptr, 0}};

bool parseLong(const char* s, long lo, long hi, long* out) {
  if (!s || !*s) return false;
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::string choiceList(const Choice* c, const char* sep) {
  std::string s;
  for (; c->name; c++)
    if (c->listed) s += (s.empty() ? "" : sep) + std::string(c->name);
  return s;
}

// What a flag accepts, for error messages.
std::string accepted(const FlagStore& st) {
  switch (st.kind) {
    case FlagStore::Kind::kSize:
      return std::string("a size such as 8, 1K, 1M, 256M, 1G") + (st.lo > 0 ? " (> 0)" : "");
    case FlagStore::Kind::kInt:
    case FlagStore::Kind::kSizeNum:
      return "an integer in [" + std::to_string(st.lo) + ", " + std::to_string(st.hi) + "]";
    case FlagStore::Kind::kChoice:
      return "one of " + choiceList(st.choices, ", ");
    case FlagStore::Kind::kHelp:
      break;
  }
  return "";
}

bool store(const FlagStore& st, const char* arg, Options* o) {
  long v = 0;
  switch (st.kind) {
    case FlagStore::Kind::kSize: {
      size_t b = 0;
      if (!parseSize(arg, &b) || (long)b < st.lo) return false;
      o->*st.size = b;
      return true;
    }
    case FlagStore::Kind::kSizeNum:
      if (!parseLong(arg, st.lo, st.hi, &v)) return false;
      o->*st.size = (size_t)v;
      return true;
    case FlagStore::Kind::kInt:
      if (!parseLong(arg, st.lo, st.hi, &v)) return false;
      o->*st.integer = (int)v;
      return true;
    case FlagStore::Kind::kChoice:
      for (const Choice* c = st.choices; c->name; c++)
        if (std::strcmp(arg, c->name) == 0) {
          o->*st.integer = c->value;
          return true;
        }
      return false;
    case FlagStore::Kind::kHelp:
      break;
  }
  return false;
}

// The flags of a tool in usage order: the shared ones it names, then its own; an own flag
// replaces a shared one with the same letter (at the shared one's place).
std::vector<Flag> toolFlags(const Tool& tool) {
  std::vector<Flag> out;
  auto own = [&](char letter) -> const Flag* {
    for (const Flag& f : tool.own)
      if (f.letter == letter) return &f;
    return nullptr;
  };
  for (const Flag& f : commonFlags()) {
    if (!std::strchr(tool.common, f.letter) && f.letter != 'h') continue;
    out.push_back(own(f.letter) ? *own(f.letter) : f);
  }
  for (const Flag& f : tool.own) {
    bool placed = false;
    for (const Flag& g : out) placed = placed || g.letter == f.letter;
    if (!placed) out.insert(out.end() - 1, f);  // before -h
  }
  return out;
}

void usage(const Tool& tool, const std::vector<Flag>& flags) {
  std::printf("USAGE: %s\n", tool.name);
  for (const Flag& f : flags) {
    std::string head = std::string("-") + f.letter + ",--" + f.name;
    if (f.arg) head += std::string(" ") + f.arg;
    std::string help = f.help;
    if (f.store.kind == FlagStore::Kind::kChoice) help += " (" + choiceList(f.store.choices, "/") + ")";
    std::printf("\t[%s]%s%s\n", head.c_str(), help.empty() ? "" : " ", help.c_str());
  }
  if (tool.notes && *tool.notes) std::printf("%s", tool.notes);
}

}  // namespace

bool parseSize(const char* s, size_t* bytes) {
  if (!s || !*s) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || errno != 0 || !(v >= 0)) return false;
  double unit = 1;
  switch (*end) {
    case 'G':
    case 'g':
      unit = 1024.0 * 1024 * 1024;
      end++;
      break;
    case 'M':
    case 'm':
      unit = 1024.0 * 1024;
      end++;
      break;
    case 'K':
    case 'k':
      unit = 1024.0;
      end++;
      break;
    default:
      break;
  }
  if (*end == 'B' || *end == 'b') end++;  // "1MB", "8B": a byte suffix is harmless
  if (*end != '\0') return false;
  v *= unit;
  if (v > 9.0e18) return false;
  *bytes = (size_t)v;
  return true;
}

const std::vector<Flag>& commonFlags() {
  using O = Options;
  static const std::vector<Flag> flags = {
      {'t', "nthreads", "<num threads>", "ranks run as threads of this process (x processes)",
       intAt(&O::nThreads, 1, 1024)},
      {'g', "ngpus", "<gpus per thread>", "must be 1: host ranks have no GPUs (use -t for more ranks)",
       intAt(&O::ignored, 1, 1)},
      {'b', "minbytes", "<min size in bytes>", "e.g. 8, 1K, 1M, 256M, 1G", sizeAt(&O::minBytes)},
      {'e', "maxbytes", "<max size in bytes>", "", sizeAt(&O::maxBytes)},
      {'i', "stepbytes", "<increment size>", "", sizeAt(&O::stepBytes, 1)},
      {'f', "stepfactor", "<increment factor>", "(used instead of -i when > 1)",
       countAt(&O::stepFactor, 1, 1 << 20)},
      {'n', "iters", "<iteration count>", "", intAt(&O::iters, 1, 1 << 30)},
      {'m', "agg_iters", "<aggregated iteration count>", "collectives per fcclGroupStart/End",
       intAt(&O::aggIters, 1, 1 << 20)},
      {'w', "warmup_iters", "<warmup iteration count>", "", intAt(&O::warmupIters, 0, 1 << 30)},
      {'N', "run_cycles", "<cycle count>", "run & print each cycle (default: 1; 0=infinite)",
       intAt(&O::runCycles, 0, 1 << 30)},
      {'p', "parallel_init", "<0/1>", "accepted for nccl-tests compatibility, no effect",
       intAt(&O::ignored, -1, 1 << 30)},
      {'c', "check", "<check iteration count>", "(0 disables checking)", intAt(&O::check, 0, 1 << 20)},
      {'o', "op", "<op>", "reduction (all: every op but mulsum)", choiceAt(&O::opIndex, kOpChoices)},
      {'d', "datatype", "<type>", "data type", choiceAt(&O::typeIndex, kTypeChoices)},
      {'r', "root", "<root>", "(-1: every root)", intAt(&O::root, -1, 1 << 20)},
      {'z', "blocking", "<0/1/2/3>", "accepted; host collectives are synchronous", intAt(&O::blocking, 0, 3)},
      {'y', "stream_null", "<0/1>", "accepted for nccl-tests compatibility, no effect",
       intAt(&O::ignored, -1, 1 << 30)},
      {'T', "timeout", "<time in seconds>", "accepted for nccl-tests compatibility, no effect",
       intAt(&O::ignored, -1, 1 << 30)},
      {'C', "report_cputime", "<0/1>", "accepted; times are host wall-clock times", intAt(&O::ignored, 0, 1)},
      {'a', "average", "<0/1/2/3>", "report average iteration time <0=RANK0/1=AVG/2=MIN/3=MAX>",
       intAt(&O::average, 0, 3)},
      {'h', "help", nullptr, "", {FlagStore::Kind::kHelp}},
  };
  return flags;
}

int parseOptions(int argc, char** argv, const Tool& tool, Options* o) {
  const std::vector<Flag> flags = toolFlags(tool);
  std::string shortopts = ":";
  std::vector<option> longopts;
  for (const Flag& f : flags) {
    shortopts += f.letter;
    if (f.arg) shortopts += ':';
    longopts.push_back({f.name, f.arg ? required_argument : no_argument, nullptr, f.letter});
  }
  longopts.push_back({nullptr, 0, nullptr, 0});
  opterr = 0;
  optind = 1;
  for (;;) {
    int c = getopt_long(argc, argv, shortopts.c_str(), longopts.data(), nullptr);
    if (c == -1) break;
    if (c == ':') {
      std::fprintf(stderr, "%s: option -%c needs a value (see -h)\n", tool.name, optopt);
      return 1;
    }
    const Flag* flag = nullptr;
    for (const Flag& f : flags)
      if (f.letter == c) flag = &f;
    if (!flag) {
      if (optopt)
        std::fprintf(stderr, "%s: unknown option -%c (see -h)\n", tool.name, optopt);
      else
        std::fprintf(stderr, "%s: unknown option '%s' (see -h)\n", tool.name, argv[optind - 1]);
      return 1;
    }
    if (flag->store.kind == FlagStore::Kind::kHelp) {
      usage(tool, flags);
      return 0;
    }
    if (!store(flag->store, optarg, o)) {
      std::fprintf(stderr, "%s: invalid value '%s' for -%c (--%s): expected %s\n", tool.name, optarg, c,
                   flag->name, accepted(flag->store).c_str());
      return 1;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "%s: unexpected argument '%s' (see -h)\n", tool.name, argv[optind]);
    return 1;
  }
  if (o->minBytes > o->maxBytes) {
    std::fprintf(stderr, "%s: invalid sizes for 'minbytes' and 'maxbytes': %zu > %zu\n", tool.name,
                 o->minBytes, o->maxBytes);
    return 1;
  }
  return -1;
}

}  // namespace fccl::perf
