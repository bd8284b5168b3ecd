// cache_files.cc - see cache_files.h.
#include "fusion/cache/cache_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fccl::fusion::cache {

namespace {
std::string sysError(const std::string& what) { return what + ": " + std::strerror(errno); }
}  // namespace

// Creates `dir` (and missing parents) with mode 0700 and accepts it only if it is a real
// directory owned by this user that nobody else can write. Why: code found there is loaded
// (dlopen, cuModuleLoadData), so a directory another user can write into (or a symlink to
// one) would let them run code inside this process. /tmp/fccl-jit-<uid> in particular may have been
// pre-created by someone else: refused, never used.
bool privateDir(const std::string& dir, std::string* error) {
  if (dir.empty() || dir[0] != '/')
    return *error = "cache directory '" + dir + "' is not an absolute path", false;
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return *error = sysError("cannot create cache directory '" + part + "'"), false;
  }
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return *error = sysError("cache directory '" + dir + "'"), false;
  if (!S_ISDIR(st.st_mode))
    return *error = "cache directory '" + dir + "' is not a directory (a symlink?)", false;
  if (st.st_uid != geteuid())
    return *error = "cache directory '" + dir + "' is owned by uid " + std::to_string(st.st_uid) +
                    ", not this user: refused (code loaded from it would run in this process)",
           false;
  if (st.st_mode & 022)
    return *error = "cache directory '" + dir + "' is writable by group or others: refused (chmod 700 it)",
           false;
  return true;
}

// A regular file owned by this user (what we would have written).
bool ownFile(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid();
}

// pid.tid: unique among all writers alive at once, with no counter to keep.
std::string uniqueSuffix() {
  return ".tmp." + std::to_string(getpid()) + "." + std::to_string(static_cast<long>(syscall(SYS_gettid)));
}

bool writeAtomically(const std::string& path, const std::string& text, std::string* error) {
  const std::string tmp = path + uniqueSuffix();
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return *error = sysError("cannot write '" + tmp + "'"), false;
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      *error = sysError("cannot write '" + tmp + "'");
      close(fd);
      unlink(tmp.c_str());
      return false;
    }
    done += static_cast<size_t>(w);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    *error = sysError("cannot rename '" + tmp + "' to '" + path + "'");
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::string readSome(const std::string& path, size_t limit) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string s(limit, '\0');
  size_t n = 0;
  for (ssize_t r; n < limit && (r = read(fd, &s[n], limit - n)) > 0;) n += static_cast<size_t>(r);
  close(fd);
  s.resize(n);
  return s;
}

}  // namespace fccl::fusion::cache
