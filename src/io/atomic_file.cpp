// Atomic file writes (temp file + fsync + rename + directory fsync) and checked file reads.
#include "perceiver/io/atomic_file.h"

#include <signal.h>

#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "perceiver/core/error.h"

namespace perceiver::io {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Best effort: a directory fsync failure after a successful rename is still reported.
void fsync_dir(const std::string& path) {
  const std::string dir = dir_of(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    throw_error("[atomic_write] ", path, ": cannot open directory ", dir, " to sync it: ",
                errno_text(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems do not support fsync on directories (EINVAL); the rename is done anyway.
  if (rc != 0 && err != EINVAL && err != EROFS)
    throw_error("[atomic_write] ", path, ": fsync of directory ", dir, " failed: ", errno_text(err));
}

}  // namespace

void write_all(std::FILE* f, const void* data, size_t size, const std::string& component,
               const std::string& path) {
  if (size == 0) return;
  errno = 0;
  const size_t n = std::fwrite(data, 1, size, f);
  if (n != size)
    throw_error("[", component, "] ", path, ": write failed after ", n, " of ", size, " bytes: ",
                errno ? errno_text(errno) : std::string("unknown error"));
}

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& writer) {
  check(!path.empty(), "[atomic_write] empty output path");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wbx");  // x: never follow/clobber an existing file
  if (!f && errno == EEXIST) {  // a stale temp file from a crashed run with a recycled pid
    ::unlink(tmp.c_str());
    f = std::fopen(tmp.c_str(), "wbx");
  }
  if (!f)
    throw_error("[atomic_write] ", path, ": cannot create temporary file ", tmp, ": ",
                errno_text(errno));
  auto fail = [&](const std::string& what, int err) {
    if (f) std::fclose(f);
    ::unlink(tmp.c_str());
    throw_error("[atomic_write] ", path, ": ", what, ": ", errno_text(err));
  };
  try {
    writer(f);
  } catch (...) {
    std::fclose(f);
    ::unlink(tmp.c_str());
    throw;
  }
  if (std::ferror(f)) fail("write to " + tmp + " failed", errno ? errno : EIO);
  if (std::fflush(f) != 0) fail("flush of " + tmp + " failed", errno);
  if (::fsync(::fileno(f)) != 0) fail("fsync of " + tmp + " failed", errno);
  const int rc = std::fclose(f);
  f = nullptr;
  if (rc != 0) fail("close of " + tmp + " failed", errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("rename from " + tmp + " failed", errno);
  fsync_dir(path);
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  write_file_atomic(path, [&](std::FILE* f) { write_all(f, data, size, "atomic_write", path); });
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_error("[read_file] ", path, ": cannot open: ", errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_error("[read_file] ", path, ": cannot stat: ", errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_error("[read_file] ", path, ": not a regular file");
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  for (;;) {
    if (got == out.size()) out.resize(out.size() + 65536);  // the file grew or size was 0
    const ssize_t n = ::read(fd, &out[got], out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw_error("[read_file] ", path, ": read failed after ", got, " bytes: ", errno_text(err));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

std::vector<std::string> remove_stale_temp_files(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at == 0) continue;
    const std::string pid_text = name.substr(at + 5);
    if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code rm;
    if (entry.is_regular_file(rm) && std::filesystem::remove(entry.path(), rm)) removed.push_back(name);
  }
  return removed;
}

}  // namespace perceiver::io
