// dynlib.h - optional libraries loaded at run time (dlopen), so libfccl links none of them and
// runs where they are missing: NVRTC for compiling kernels, the CUDA runtime for device
// communicators. A library or a function that is missing is a sentence, never a crash.
#pragma once
#include <dlfcn.h>

#include <initializer_list>
#include <string>

namespace fccl {

// The first of `names` that loads (RTLD_NOW | RTLD_LOCAL), or null with *why naming them all.
inline void* dynOpen(std::initializer_list<const char*> names, std::string* why) {
  std::string tried;
  for (const char* n : names) {
    if (void* h = dlopen(n, RTLD_NOW | RTLD_LOCAL)) return h;
    const char* e = dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + (e != nullptr ? e : n);
  }
  if (why != nullptr) *why = tried;
  return nullptr;
}

// *fn = `name` from library h; false (and *why names it) when it is not there.
template <class F>
bool dynSym(void* h, const char* name, F* fn, std::string* why) {
  *fn = reinterpret_cast<F>(dlsym(h, name));
  if (*fn == nullptr && why != nullptr) *why += std::string(why->empty() ? "" : "; ") + "no symbol " + name;
  return *fn != nullptr;
}

}  // namespace fccl
