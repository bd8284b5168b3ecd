// cache_files.h - the files of fccl's on-disk caches of compiled code (the C++ JIT's shared
// objects, FCCL_JIT_CACHE; the CUDA backend's cubins, FCCL_CACHE_DIR): a private directory,
// files that appear whole (rename(2) of a finished temporary), and reads of what we wrote.
// Code loaded from a cache runs in this process, hence the ownership and permission checks.
#pragma once
#include <cstddef>
#include <string>

namespace fccl::fusion::cache {

// Creates `dir` (and missing parents) with mode 0700 and accepts it only if it is a real
// directory owned by this user that nobody else can write; else false with *error saying why.
bool privateDir(const std::string& dir, std::string* error);
// A regular file owned by this user (what we would have written).
bool ownFile(const std::string& path);
// ".tmp.<pid>.<tid>": unique among all writers alive at once.
std::string uniqueSuffix();
// `text` into `path` through a temporary and rename(2): readers see the old file or the new one.
bool writeAtomically(const std::string& path, const std::string& text, std::string* error);
// Up to `limit` bytes of `path`; "" if it cannot be read.
std::string readSome(const std::string& path, size_t limit);

}  // namespace fccl::fusion::cache
