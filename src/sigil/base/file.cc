#include "sigil/base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace sigil::file {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what);
    }
    off += static_cast<size_t>(n);
  }
  return OkStatus();
}

Status ReadAllFd(int fd, size_t max_bytes, const std::string& path, uint8_t* (*grow)(void*, size_t),
                 void* ctx, size_t* total) {
  *total = 0;
  for (;;) {
    uint8_t* buf = grow(ctx, *total + 65536);
    ssize_t n = ::read(fd, buf + *total, 65536);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, path);
    }
    if (n == 0) break;
    *total += static_cast<size_t>(n);
    if (*total > max_bytes) return InvalidArgumentError(path + ": file is larger than the limit");
  }
  return OkStatus();
}

}  // namespace

Status ErrnoStatus(int err, std::string_view what) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  switch (err) {
    case ENOENT: return NotFoundError(std::move(m));
    case EACCES:
    case EPERM:
    case EROFS: return PermissionDeniedError(std::move(m));
    case ENOSPC:
    case EDQUOT: return ResourceExhaustedError(std::move(m));
    case EEXIST: return AlreadyExistsError(std::move(m));
    case EINVAL:
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG: return InvalidArgumentError(std::move(m));
    default: return UnavailableError(std::move(m));
  }
}

Result<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, path);
  std::string out;
  size_t total = 0;
  SIGIL_RETURN_IF_ERROR(ReadAllFd(
      fd.get(), max_bytes, path,
      [](void* c, size_t n) {
        auto* s = static_cast<std::string*>(c);
        if (s->size() < n) s->resize(n);
        return reinterpret_cast<uint8_t*>(s->data());
      },
      &out, &total));
  out.resize(total);
  return out;
}

Result<SecretBytes> ReadPrivateFile(const std::string& path, size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return ErrnoStatus(errno, path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, path);
  if (!S_ISREG(st.st_mode)) return PermissionDeniedError(path + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
    return PermissionDeniedError(path + ": key file mode is " + mode +
                                 "; it must not be accessible to group or others (chmod 600)");
  }
  SecretBytes out;
  size_t total = 0;
  SIGIL_RETURN_IF_ERROR(ReadAllFd(
      fd.get(), max_bytes, path,
      [](void* c, size_t n) {
        auto* s = static_cast<SecretBytes*>(c);
        // Grow by moving into a new zeroing buffer so no unzeroed copy is left behind.
        if (s->size() < n) s->resize(n);
        return s->data();
      },
      &out, &total));
  out.resize(total);
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  std::filesystem::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (fd.get() < 0) return ErrnoStatus(errno, tmp);
    if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
      Status s = ErrnoStatus(errno, tmp);
      ::unlink(tmp.c_str());
      return s;
    }
    Status s = WriteAll(fd.get(), data, tmp);
    if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoStatus(errno, "fsync " + tmp);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = ErrnoStatus(errno, "rename " + path);
    ::unlink(tmp.c_str());
    return s;
  }
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return ErrnoStatus(errno, dir);
  if (::fsync(dfd.get()) != 0) return ErrnoStatus(errno, "fsync " + dir);
  return OkStatus();
}

Status MakePrivateDir(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    if (!std::filesystem::is_directory(path, ec)) return InvalidArgumentError(path + ": not a directory");
    return OkStatus();
  }
  std::filesystem::path p(path);
  if (p.has_parent_path() && !p.parent_path().empty()) {
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) return ErrnoStatus(ec.value(), p.parent_path().string());
  }
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus(errno, path);
  if (::chmod(path.c_str(), 0700) != 0) return ErrnoStatus(errno, path);
  return OkStatus();
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace sigil::file
