// options.h - the perf tools' command line: nccl-tests' flags, declared once each in one table
// (letter, long name, argument, help, where the value is stored and its accepted values), shared
// by every tool. A tool names the shared flags it takes and adds its own (mpi_perf -C, fused_perf
// -p, membw -k, overlap_perf -k -R); its own flag replaces a shared one with the same letter.
// Parsing is strict: a bad value names the flag, the value and what is accepted.
#ifndef FCCL_PERF_OPTIONS_H_
#define FCCL_PERF_OPTIONS_H_

#include <cstddef>
#include <vector>

namespace fccl::perf {

struct Options {
  int nThreads = 1;
  size_t minBytes = 32u << 20, maxBytes = 32u << 20, stepBytes = 1u << 20, stepFactor = 1;
  int iters = 20, warmupIters = 1, aggIters = 1, runCycles = 1;
  int check = 1;      // -c: check iterations per size (0: no check)
  int typeIndex = 7;  // -d: index in kTypes, -1 = all (default float)
  int opIndex = 0;    // -o: index in kOpNames, -1 = all (default sum)
  int root = 0;       // -r: -1 = every root
  int blocking = 0;   // -z: accepted; host collectives are synchronous
  int average = 1;    // -a: 0 rank 0, 1 avg, 2 min, 3 max
  int ignored = 0;    // flags accepted for nccl-tests compatibility land here
  // A tool's own choice flag (mpi_perf -C collective, fused_perf -p optimizer, membw -k
  // kernel): the value of the chosen name in that flag's list, -1 for "all" where allowed.
  int choice = 0;
  size_t inner = 256, rows = 16;  // overlap_perf -k, -R
};

// One accepted name of a choice flag. Aliases (listed = false) are accepted, not shown.
struct Choice {
  const char* name;
  int value;
  bool listed = true;
};

// Where a flag's value is stored and what it accepts.
struct FlagStore {
  enum class Kind {
    kSize,     // a byte size (8, 1K, 1.5M, 256M, 1G) into Options::*size, at least lo
    kInt,      // a decimal integer in [lo, hi] into Options::*integer
    kChoice,   // one of choices (nullptr-name terminated) into Options::*integer
    kSizeNum,  // a plain count in [lo, hi] into Options::*size
    kHelp      // -h
  };
  Kind kind;
  size_t Options::*size = nullptr;
  int Options::*integer = nullptr;
  long lo = 0, hi = 0;
  const Choice* choices = nullptr;
};

constexpr FlagStore sizeAt(size_t Options::*f, long lo = 0) {
  return {FlagStore::Kind::kSize, f, nullptr, lo, 0, nullptr};
}
constexpr FlagStore countAt(size_t Options::*f, long lo, long hi) {
  return {FlagStore::Kind::kSizeNum, f, nullptr, lo, hi, nullptr};
}
constexpr FlagStore intAt(int Options::*f, long lo, long hi) {
  return {FlagStore::Kind::kInt, nullptr, f, lo, hi, nullptr};
}
constexpr FlagStore choiceAt(int Options::*f, const Choice* c) {
  return {FlagStore::Kind::kChoice, nullptr, f, 0, 0, c};
}

struct Flag {
  char letter;       // -b
  const char* name;  // --minbytes
  const char* arg;   // "<min size in bytes>" in the usage; nullptr: takes no value
  const char* help;  // one line
  FlagStore store;
};

// The shared table (nccl-tests' flags), in nccl-tests' usage order.
const std::vector<Flag>& commonFlags();

struct Tool {
  const char* name;        // for messages: "fused_perf"
  const char* common;      // letters of commonFlags() this tool takes, e.g. "tbefinwc"
  std::vector<Flag> own;   // its own flags
  const char* notes = "";  // printed after the flag list by -h
};

// Parses argv into *o. Returns -1 to go on, else the exit code (0 after -h, 1 after an error,
// with the message already printed on stderr).
int parseOptions(int argc, char** argv, const Tool& tool, Options* o);
// "8", "1K", "1.5M", "256M", "1G" (binary units, optional B) -> bytes; false if not a size.
bool parseSize(const char* s, size_t* bytes);

}  // namespace fccl::perf

#endif  // FCCL_PERF_OPTIONS_H_
