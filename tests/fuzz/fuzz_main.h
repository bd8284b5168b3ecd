// fuzz_main.h - what the wire fuzz targets share: building seed messages, and the libFuzzer entry
// points. A target defines, in an anonymous namespace before including nothing else of this:
//   bool runOne(const uint8_t* data, size_t size);   // false: the input was rejected
//   std::vector<Seed> seeds();                        // one valid message per kind
// and then expands FCCL_FUZZ_MAIN("name"). `--write-seeds=DIR` writes the seeds as a corpus and
// fails if any valid message is rejected (valid traffic must pass the checks being fuzzed).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace fuzzmain {

using Seed = std::pair<std::string, std::vector<uint8_t>>;

template <class T>
void append(std::vector<uint8_t>* s, const T& v) {
  const uint8_t* b = reinterpret_cast<const uint8_t*>(&v);
  s->insert(s->end(), b, b + sizeof(v));
}

template <class RunOne>
int writeSeeds(const char* target, const char* dir, const std::vector<Seed>& seeds, RunOne runOne) {
  for (const auto& [name, bytes] : seeds) {
    if (!runOne(bytes.data(), bytes.size())) {
      fprintf(stderr, "%s: seed %s (a valid message) was rejected\n", target, name.c_str());
      return 1;
    }
    const std::string path = std::string(dir) + "/" + name;
    FILE* f = fopen(path.c_str(), "wb");
    if (!f || fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || fclose(f) != 0) {
      fprintf(stderr, "%s: cannot write %s\n", target, path.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace fuzzmain

#define FCCL_FUZZ_MAIN(target)                                                \
  extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {              \
    for (int i = 1; i < *argc; i++)                                           \
      if (strncmp((*argv)[i], "--write-seeds=", 14) == 0)                     \
        exit(fuzzmain::writeSeeds(target, (*argv)[i] + 14, seeds(), runOne)); \
    return 0;                                                                 \
  }                                                                           \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {   \
    runOne(data, size);                                                       \
    return 0;                                                                 \
  }
