#include "sigil/agent/atomic_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>

#include "sigil/agent/config.h"
#include "sigil/base/file.h"

namespace sigil::agent {
namespace {

constexpr const char* kDataLink = "..data";
constexpr const char* kDataTmp = "..data_tmp";

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

Status Errno(const std::string& what) { return file::ErrnoStatus(errno, what); }

// The timestamped directories this writer makes: "..2026_12_08_01_02_03.XXXXXX".
bool IsVersionDir(std::string_view name) {
  if (name.size() < 22 || !name.starts_with("..")) return false;
  for (size_t i = 2; i < 6; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  return name[6] == '_';
}

std::string TopElement(const std::string& path) { return path.substr(0, path.find('/')); }

// Removes `name` under `dfd` and everything below it, without following symlinks.
Status RemoveTreeAt(int dfd, const std::string& name) {
  int fd = ::openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return OkStatus();
    if (errno == ENOTDIR || errno == ELOOP) {
      if (::unlinkat(dfd, name.c_str(), 0) != 0 && errno != ENOENT) return Errno(name);
      return OkStatus();
    }
    return Errno(name);
  }
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return Errno(name);
  }
  Status result = OkStatus();
  std::vector<std::pair<std::string, bool>> entries;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    entries.emplace_back(std::string(n), e->d_type == DT_DIR);
  }
  for (auto& [n, is_dir] : entries) {
    Status st = is_dir ? RemoveTreeAt(::dirfd(d), n) : OkStatus();
    if (!is_dir && ::unlinkat(::dirfd(d), n.c_str(), 0) != 0 && errno != ENOENT) {
      st = errno == EISDIR ? RemoveTreeAt(::dirfd(d), n) : Errno(name + "/" + n);
    }
    if (!st.ok() && result.ok()) result = st;
  }
  ::closedir(d);
  if (::unlinkat(dfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT && result.ok())
    result = Errno(name);
  return result;
}

// The regular files below `dfd`/`name`, as relative paths; false if anything else is there.
bool ListFiles(int dfd, const std::string& name, const std::string& prefix,
               std::set<std::string>* out) {
  int fd = ::openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return false;
  }
  bool ok = true;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st;
    if (::fstatat(::dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      ok = false;
    } else if (S_ISDIR(st.st_mode)) {
      ok = ListFiles(::dirfd(d), n, prefix + n + "/", out) && ok;
    } else if (S_ISREG(st.st_mode)) {
      out->insert(prefix + n);
    } else {
      ok = false;
    }
  }
  ::closedir(d);
  return ok;
}

// True when `version` (a directory under dfd) holds exactly `files` with their modes, owners
// and contents.
bool Same(int dfd, const std::string& version, const std::vector<FileData>& files,
          const Ownership& own) {
  std::set<std::string> present;
  if (!ListFiles(dfd, version, "", &present) || present.size() != files.size()) return false;
  for (const FileData& f : files) {
    if (!present.count(f.path)) return false;
    Fd fd(::openat(dfd, (version + "/" + f.path).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (!fd.ok() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    if (static_cast<int>(st.st_mode & 07777) != f.mode ||
        static_cast<size_t>(st.st_size) != f.data.size())
      return false;
    if ((own.owner && st.st_uid != *own.owner) || (own.group && st.st_gid != *own.group))
      return false;
    SecretBytes have(f.data.size());
    size_t got = 0;
    while (got < have.size()) {
      ssize_t n = ::read(fd.get(), have.data() + got, have.size() - got);
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    if (std::memcmp(have.data(), f.data.data(), have.size()) != 0) return false;
  }
  return true;
}

Status WriteFileAt(int dfd, const FileData& f, const Ownership& own) {
  // Parent directories of a nested path, inside the new version only.
  for (size_t slash = f.path.find('/'); slash != std::string::npos;
       slash = f.path.find('/', slash + 1)) {
    std::string parent = f.path.substr(0, slash);
    if (::mkdirat(dfd, parent.c_str(), 0755) == 0) {
      Fd pfd(::openat(dfd, parent.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!pfd.ok() || ::fchmod(pfd.get(), 0755) != 0) return Errno(parent);  // whatever the umask
    } else if (errno != EEXIST) {
      return Errno(parent);
    }
  }
  Fd fd(::openat(dfd, f.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.ok()) return Errno(f.path);
  size_t done = 0;
  while (done < f.data.size()) {
    ssize_t n = ::write(fd.get(), f.data.data() + done, f.data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno(f.path);
    done += static_cast<size_t>(n);
  }
  if ((own.owner || own.group) &&
      ::fchown(fd.get(), own.owner ? *own.owner : static_cast<uid_t>(-1),
               own.group ? *own.group : static_cast<gid_t>(-1)) != 0) {
    return Errno("chown " + f.path);
  }
  // After fchown, which may clear set-id bits; umask does not apply to fchmod.
  if (::fchmod(fd.get(), static_cast<mode_t>(f.mode)) != 0) return Errno("chmod " + f.path);
  return OkStatus();
}

// mkdir with mode 0755 whatever the umask (only a directory this call made is chmod-ed).
bool MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0) return errno == EEXIST;
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  return fd.ok() && ::fchmod(fd.get(), 0755) == 0;
}

Result<int> OpenTarget(const std::string& dir) {
  if (!MakeDir(dir)) {
    // Parents first, as `mkdir -p`.
    if (errno != ENOENT) return Errno(dir);
    for (size_t slash = dir.find('/', 1); slash != std::string::npos;
         slash = dir.find('/', slash + 1)) {
      if (!MakeDir(dir.substr(0, slash))) return Errno(dir.substr(0, slash));
    }
    if (!MakeDir(dir)) return Errno(dir);
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno(dir);
  return fd;
}

std::optional<std::string> CurrentVersion(int dfd) {
  char buf[256];
  ssize_t n = ::readlinkat(dfd, kDataLink, buf, sizeof(buf) - 1);
  if (n <= 0) return std::nullopt;
  std::string target(buf, static_cast<size_t>(n));
  if (!IsVersionDir(target) || target.find('/') != std::string::npos) return std::nullopt;
  return target;
}

// A user-visible entry is ours when it is a symlink to ..data/<name>.
bool IsOurLink(int dfd, const std::string& name) {
  char buf[512];
  ssize_t n = ::readlinkat(dfd, name.c_str(), buf, sizeof(buf) - 1);
  return n > 0 &&
         std::string_view(buf, static_cast<size_t>(n)) == std::string(kDataLink) + "/" + name;
}

// Step 3 of a write, and the repair of a directory whose data did not change: a link for
// every top-level name, none for names that are gone, no version directory but `version`
// (and `keep`, when given).
Status Tidy(int dfd, const std::string& dir, const std::string& version,
            const std::set<std::string>& tops, const std::string& keep = "") {
  Status result = OkStatus();
  for (const std::string& top : tops) {
    if (::symlinkat((std::string(kDataLink) + "/" + top).c_str(), dfd, top.c_str()) != 0 &&
        errno != EEXIST && result.ok()) {
      result = Errno(dir + "/" + top);
    }
  }
  int fd2 = ::dup(dfd);
  DIR* d = fd2 >= 0 ? ::fdopendir(fd2) : nullptr;
  if (d == nullptr && fd2 >= 0) ::close(fd2);
  std::vector<std::string> stale_links, stale_versions;
  while (d != nullptr) {
    dirent* e = ::readdir(d);
    if (e == nullptr) break;
    std::string n = e->d_name;
    if (n == "." || n == ".." || n == kDataLink) continue;
    if (n == kDataTmp) {
      stale_links.push_back(n);
    } else if (IsVersionDir(n)) {
      if (n != version && n != keep) stale_versions.push_back(n);
    } else if (!tops.count(n) && IsOurLink(dfd, n)) {
      stale_links.push_back(n);
    }
  }
  if (d != nullptr) ::closedir(d);
  for (const std::string& n : stale_links) ::unlinkat(dfd, n.c_str(), 0);
  for (const std::string& n : stale_versions) {
    if (Status st = RemoveTreeAt(dfd, n); !st.ok() && result.ok()) result = st;
  }
  return result;
}

}  // namespace

Result<bool> WriteAtomically(const std::string& dir, const std::vector<FileData>& files,
                             const Ownership& own, bool keep_previous) {
  std::set<std::string> tops;
  for (const FileData& f : files) {
    if (Status st = CheckItemPath(f.path); !st.ok())
      return InvalidArgumentError("file path \"" + f.path + "\": " + st.message());
    tops.insert(TopElement(f.path));
  }
  SIGIL_ASSIGN_OR_RETURN(int raw_fd, OpenTarget(dir));
  Fd dfd(raw_fd);
  std::optional<std::string> old = CurrentVersion(dfd.get());
  if (old && Same(dfd.get(), *old, files, own)) {
    // Nothing to write, but a link removed by hand or leftovers of an interrupted write are
    // repaired (a name we did not make is left alone, as below).
    std::set<std::string> ours;
    for (const std::string& top : tops) {
      struct stat st;
      if (::fstatat(dfd.get(), top.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          IsOurLink(dfd.get(), top))
        ours.insert(top);
    }
    SIGIL_RETURN_IF_ERROR(Tidy(dfd.get(), dir, *old, ours));
    return false;
  }

  // Every user-visible name must be free or already ours: never replace a file we did not make.
  for (const std::string& top : tops) {
    struct stat st;
    if (::fstatat(dfd.get(), top.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        !IsOurLink(dfd.get(), top)) {
      return FailedPreconditionError(dir + "/" + top +
                                     " exists and was not made by sigil-agent; not replacing it");
    }
  }

  // 1. The new version, complete, in a directory of its own.
  char stamp[64];
  std::time_t now = std::time(nullptr);
  std::tm tm;
  ::gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof(stamp), "..%Y_%m_%d_%H_%M_%S.XXXXXX", &tm);
  std::string tmpl = dir + "/" + stamp;
  if (::mkdtemp(tmpl.data()) == nullptr) return Errno(dir);
  std::string version = tmpl.substr(dir.size() + 1);
  auto discard = [&] { RemoveTreeAt(dfd.get(), version).IgnoreError(); };
  {
    // By descriptor, never by path: nothing swapped in for the new directory is followed.
    Fd vfd(::openat(dfd.get(), version.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!vfd.ok() || ::fchmod(vfd.get(), 0755) != 0) {
      Status st = Errno(tmpl);
      discard();
      return st;
    }
    for (const FileData& f : files) {
      if (Status st = WriteFileAt(vfd.get(), f, own); !st.ok()) {
        discard();
        return st;
      }
    }
  }

  // 2. ..data swapped to it by rename(2): readers see the old set or the new one.
  if (::unlinkat(dfd.get(), kDataTmp, 0) != 0 && errno != ENOENT) {
    Status st = Errno(dir + "/" + kDataTmp);
    discard();
    return st;
  }
  if (::symlinkat(version.c_str(), dfd.get(), kDataTmp) != 0 ||
      ::renameat(dfd.get(), kDataTmp, dfd.get(), kDataLink) != 0) {
    Status st = Errno(dir + "/" + kDataLink);
    ::unlinkat(dfd.get(), kDataTmp, 0);
    discard();
    return st;
  }
  ::fsync(dfd.get());

  // 3. Links for new names; links of names that are gone removed; older versions removed.
  SIGIL_RETURN_IF_ERROR(Tidy(dfd.get(), dir, version, tops, keep_previous && old ? *old : ""));
  return true;
}

Status RemoveOldVersions(const std::string& dir) {
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.ok()) return errno == ENOENT ? OkStatus() : Errno(dir);
  std::optional<std::string> current = CurrentVersion(dfd.get());
  if (!current) return OkStatus();  // nothing of ours here (or RemoveAll ran)
  int fd2 = ::dup(dfd.get());
  DIR* d = fd2 >= 0 ? ::fdopendir(fd2) : nullptr;
  if (d == nullptr) {
    if (fd2 >= 0) ::close(fd2);
    return Errno(dir);
  }
  std::vector<std::string> old;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (IsVersionDir(n) && n != *current) old.push_back(n);
  }
  ::closedir(d);
  Status result = OkStatus();
  for (const std::string& n : old) {
    if (Status st = RemoveTreeAt(dfd.get(), n); !st.ok() && result.ok()) result = st;
  }
  return result;
}

Status RemoveAll(const std::string& dir) {
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.ok()) return errno == ENOENT ? OkStatus() : Errno(dir);
  int fd2 = ::dup(dfd.get());
  DIR* d = fd2 >= 0 ? ::fdopendir(fd2) : nullptr;
  if (d == nullptr) {
    if (fd2 >= 0) ::close(fd2);
    return Errno(dir);
  }
  std::vector<std::string> links, versions;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (IsVersionDir(n)) {
      versions.push_back(n);
    } else if (IsOurLink(dfd.get(), n)) {
      links.push_back(n);
    }
  }
  ::closedir(d);
  // Names first, then ..data, then the data: a reader never follows a link into nothing it
  // could have opened a moment before.
  for (const std::string& n : links) ::unlinkat(dfd.get(), n.c_str(), 0);
  ::unlinkat(dfd.get(), kDataLink, 0);
  ::unlinkat(dfd.get(), kDataTmp, 0);
  Status result = OkStatus();
  for (const std::string& n : versions) {
    if (Status st = RemoveTreeAt(dfd.get(), n); !st.ok() && result.ok()) result = st;
  }
  return result;
}

}  // namespace sigil::agent
