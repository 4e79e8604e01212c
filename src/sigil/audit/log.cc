#include "sigil/audit/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "sigil/base/clock.h"
#include "sigil/base/encoding.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/hash.h"

namespace sigil::audit {
namespace {

using Json = nlohmann::json;
constexpr char kChainKey[] = "sigil.dev/audit-chain";
const std::string kZeroHash(64, '0');

std::string LineHash(const std::string& prev, const std::string& content) {
  return HexEncode(crypto::Sha256(prev + "\n" + content));
}

// A chained line ends with its chain annotation, the last member of "annotations", which is
// the last member of the event: ...,"sigil.dev/audit-chain":"<prev>:<hash>"}}. The content the
// hash covers is the line without that member (and without its comma), byte for byte, so
// neither writing nor verifying parses JSON.
const std::string kChainMember = std::string("\"") + kChainKey + "\":\"";
constexpr size_t kChainValueSize = 64 + 1 + 64;

// The first line of every file (and of a standard-output trail) says where its chain starts,
// as the annotation just before the chain's: "genesis" (a new trail; the previous hash is
// zeros) or "continues <file>" (a rotation: the previous hash is that file's last line's). It
// is part of the hashed content, and it sits at the end of the event, where no request's own
// data can be, so a trail whose head was cut (its first line an ordinary line) is told apart
// from one that starts or continues.
constexpr char kStartKey[] = "sigil.dev/audit-trail-start";
const std::string kStartMember = std::string("\"") + kStartKey + "\":\"";

// `line` (ending in the annotations object, "...}}") with one more annotation at its end.
std::string WithAnnotation(const std::string& line, const std::string& member) {
  if (line.size() >= 2 && line.compare(line.size() - 2, 2, "}}") == 0) {
    bool empty = line.size() >= 3 && line[line.size() - 3] == '{';
    return line.substr(0, line.size() - 2) + (empty ? "" : ",") + member + "}}";
  }
  std::string base = line.substr(0, line.size() - 1);
  return base + (base == "{" ? "" : ",") + "\"annotations\":{" + member + "}}";
}

// The value of the trail-start annotation if `content` (a line without its chain member) ends
// with one.
std::optional<std::string> TrailStart(const std::string& content) {
  if (content.size() < kStartMember.size() + 4 || content.compare(content.size() - 3, 3, "\"}}") != 0) return std::nullopt;
  size_t value_end = content.size() - 3;
  size_t at = content.rfind(kStartMember, value_end);
  if (at == std::string::npos || at == 0 || (content[at - 1] != ',' && content[at - 1] != '{')) return std::nullopt;
  std::string value = content.substr(at + kStartMember.size(), value_end - at - kStartMember.size());
  if (value.find('"') != std::string::npos) return std::nullopt;
  return value;
}

bool SplitChain(const std::string& line, std::string* content, std::string* prev, std::string* hash) {
  size_t tail = kChainMember.size() + kChainValueSize + 3;  // + "}}
  if (line.size() < tail + 1 || line.compare(line.size() - 3, 3, "\"}}") != 0) return false;
  size_t at = line.size() - tail;
  if (line.compare(at, kChainMember.size(), kChainMember) != 0) return false;
  std::string chain = line.substr(at + kChainMember.size(), kChainValueSize);
  if (chain[64] != ':') return false;
  *prev = chain.substr(0, 64);
  *hash = chain.substr(65);
  if (at > 0 && line[at - 1] == ',') {
    *content = line.substr(0, at - 1) + "}}";
  } else if (at > 0 && line[at - 1] == '{') {
    *content = line.substr(0, at) + "}}";
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::string ChainLine(const std::string& line, const std::string& prev_hash, std::string* hash,
                      const std::string& trail_start) {
  std::string content = line;
  // The event's last member must be "annotations" (Auditor::Write puts it there); anything
  // else gets an annotations member of its own.
  if (content.size() < 2 || content.compare(content.size() - 2, 2, "}}") != 0) {
    std::string base = content.substr(0, content.size() - 1);
    content = base + (base == "{" ? "" : ",") + "\"annotations\":{}}";
  }
  if (!trail_start.empty()) content = WithAnnotation(content, kStartMember + trail_start + "\"");
  *hash = LineHash(prev_hash, content);
  return WithAnnotation(content, kChainMember + prev_hash + ":" + *hash + "\"");
}

struct AuditLog::Sink {
  SinkOptions options;
  int fd = -1;
  int64_t size = 0;
  std::string last_hash = kZeroHash;
  // The next line written starts this file or stream: "genesis", or "continues <file>" after a
  // rotation. Empty once a line has been written.
  std::string trail_start;
  bool newline_first = false;  // the file ends in a partial line: end it before the next one
  // Not OK once a write or fdatasync failed for a reason other than a full disk: the sink
  // refuses every later batch (log.h "Failure"). Only the writing caller touches it.
  Status failed;
};

struct AuditLog::Batch {
  std::vector<std::string> lines;
  bool finished = false;
  Status result;
};

// The newest hash in an existing file (its last complete line), to continue the chain. Reads
// backwards from the end, so a large trail costs only its last line at start-up.
static std::string LastHashIn(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  std::streamoff pos = in.tellg();
  std::string tail;  // the file's last bytes, growing backwards
  constexpr std::streamoff kChunk = 64 << 10;
  while (in && pos > 0) {
    std::streamoff n = std::min(pos, kChunk);
    pos -= n;
    std::string chunk(static_cast<size_t>(n), '\0');
    in.seekg(pos);
    in.read(chunk.data(), n);
    tail = chunk + tail;
    size_t end = tail.find_last_not_of('\n');
    if (end != std::string::npos && tail.rfind('\n', end) != std::string::npos) break;  // a whole last line
  }
  size_t end = tail.find_last_not_of('\n');
  if (end == std::string::npos) return kZeroHash;
  size_t start = tail.rfind('\n', end);
  std::string last = tail.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
  std::string content, prev, hash;
  if (SplitChain(last, &content, &prev, &hash)) return hash;
  return kZeroHash;
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::vector<SinkOptions>& sinks) {
  if (sinks.empty()) return InvalidArgumentError("audit: at least one sink (a file path or \"-\") is required");
  std::unique_ptr<AuditLog> log(new AuditLog());
  for (const SinkOptions& o : sinks) {
    auto s = std::make_unique<Sink>();
    s->options = o;
    if (o.path == "-") {
      s->fd = STDOUT_FILENO;
    } else {
      s->fd = ::open(o.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (s->fd < 0) return UnavailableError("audit: cannot open " + o.path + ": " + std::strerror(errno));
      struct stat st {};
      if (::fstat(s->fd, &st) == 0) s->size = st.st_size;
      s->last_hash = LastHashIn(o.path);
      if (s->size == 0) {
        s->trail_start = "genesis";
      } else if (s->last_hash == kZeroHash) {
        // The file's last line is not a chained line (cut short by a crash, or edited): the
        // chain cannot continue from it, and the next line says so rather than pass for the
        // start of a trail. A last line without its newline gets one first.
        s->trail_start = "resumes after an unreadable line";
        std::ifstream in(o.path, std::ios::binary);  // the sink's own descriptor is write-only
        in.seekg(-1, std::ios::end);
        char last = '\n';
        if (in.get(last) && last != '\n') s->newline_first = true;
      }
    }
    if (s->fd == STDOUT_FILENO) s->trail_start = "genesis";
    log->sinks_.push_back(std::move(s));
  }
  log->options_ = sinks;
  return log;
}

AuditLog::~AuditLog() {
  for (auto& s : sinks_) {
    if (s->fd >= 0 && s->fd != STDOUT_FILENO) ::close(s->fd);
  }
}

void AuditLog::InjectFailureForTest(int err, FaultPoint at) {
  std::lock_guard<std::mutex> l(mu_);
  injected_errno_ = err;
  injected_at_ = at;
}

// Group commit without a writer thread: the first caller to find nobody writing becomes the
// writer and writes everything queued by then (its own lines and whatever arrived while the
// previous writer was busy); the others wait for their batch to be finished. A lone request
// writes its own line with no thread switch; under load, batches grow by themselves.
Status AuditLog::Append(std::vector<std::string> lines) {
  auto b = std::make_shared<Batch>();
  b->lines = std::move(lines);
  std::unique_lock<std::mutex> l(mu_);
  queue_.push_back(b);
  while (!b->finished) {
    if (writing_) {
      cv_.wait(l);
      continue;
    }
    writing_ = true;
    std::vector<std::shared_ptr<Batch>> batches(queue_.begin(), queue_.end());
    queue_.clear();
    int injected = injected_errno_;
    FaultPoint injected_at = injected_at_;
    l.unlock();
    std::vector<std::string> all;
    for (const auto& x : batches) all.insert(all.end(), x->lines.begin(), x->lines.end());
    Status result = UnavailableError("audit: no sink could write");
    bool any = false;
    for (auto& s : sinks_) {
      Status st = WriteTo(s.get(), all, injected, injected_at);
      if (st.ok()) {
        any = true;
      } else {
        log::Error("audit sink failed", {{"error", st.message()}});
        result = st;
      }
    }
    l.lock();
    stopped_sinks_ = 0;
    for (const auto& s : sinks_) {
      if (!s->failed.ok()) {
        ++stopped_sinks_;
        stop_reason_ = s->failed;
      }
    }
    for (const auto& x : batches) {
      x->finished = true;
      x->result = any ? OkStatus() : result;
    }
    writing_ = false;
    cv_.notify_all();
  }
  return b->result;
}

Status AuditLog::Health() {
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_sinks_ < sinks_.size()) return OkStatus();
  return stop_reason_;
}

// A full disk (or quota, or file size limit): nothing of the batch is durable and nothing
// earlier was lost, so once it is truncated away the next batch may try again.
static bool IsFull(int err) { return err == ENOSPC || err == EDQUOT || err == EFBIG; }

Status AuditLog::WriteTo(Sink* s, const std::vector<std::string>& lines, int injected, FaultPoint injected_at) {
  if (!s->failed.ok()) return s->failed;
  bool file = s->fd != STDOUT_FILENO;
  auto chain = [&](const std::string& trail_start, std::string* last) {
    std::string prev = s->last_hash;
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string hash;
      out += ChainLine(lines[i], prev, &hash, i == 0 ? trail_start : std::string());
      out += '\n';
      prev = hash;
    }
    *last = prev;
    return out;
  };
  std::string prev;
  std::string out = chain(s->trail_start, &prev);
  if (s->newline_first) out.insert(0, "\n");
  if (file && s->options.max_bytes > 0 && s->size > 0 && s->size + static_cast<int64_t>(out.size()) > s->options.max_bytes) {
    // Rotate: the old file keeps its name plus the time; the chain continues in the new one.
    std::string rotated = s->options.path + "." + FormatRfc3339(Clock::Real()->Now());
    for (int i = 1; ::access(rotated.c_str(), F_OK) == 0; ++i) {
      rotated = s->options.path + "." + FormatRfc3339(Clock::Real()->Now()) + "." + std::to_string(i);
    }
    int fd = -1;
    if (::rename(s->options.path.c_str(), rotated.c_str()) == 0) {
      fd = ::open(s->options.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    }
    if (fd >= 0) {
      ::close(s->fd);
      s->fd = fd;
      s->size = 0;
      // The new file's first line names the file it continues.
      size_t slash = rotated.rfind('/');
      std::string name = slash == std::string::npos ? rotated : rotated.substr(slash + 1);
      for (char& c : name) {
        if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';  // stays a plain JSON string
      }
      s->trail_start = "continues " + name;
      out = chain(s->trail_start, &prev);
    } else {
      log::Error("audit: cannot rotate the audit file", {{"path", s->options.path}, {"error", std::strerror(errno)}});
    }
  }
  off_t start = s->size;
  size_t done = 0;
  int err = injected && file && injected_at == FaultPoint::kWrite ? injected : 0;
  while (err == 0 && done < out.size()) {
    ssize_t n = ::write(s->fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<size_t>(n);
  }
  bool sync_failed = false;
  if (err == 0 && file && s->options.fsync) {
    if (injected && injected_at == FaultPoint::kSync) {
      err = injected;
    } else if (::fdatasync(s->fd) != 0) {
      err = errno;
    }
    sync_failed = err != 0;
  }
  if (err != 0) {
    if (file && done > 0 && ::ftruncate(s->fd, start) != 0) {
      log::Error("audit: cannot truncate a partial batch", {{"path", s->options.path}, {"error", std::strerror(errno)}});
    }
    std::string what = sync_failed ? "fdatasync" : "write";
    if (file && !IsFull(err)) {
      // Fail-stop (log.h "Failure"): neither a retry nor a later fdatasync can be trusted.
      s->failed = UnavailableError("audit: " + s->options.path + " refuses events after a failed " + what + " (" +
                                   std::strerror(err) + "); restart sigil to reopen it");
      log::Error("audit sink stopped until restart", {{"path", s->options.path}, {"call", what}, {"error", std::strerror(err)}});
    }
    return UnavailableError("audit: cannot " + what + " " + s->options.path + ": " + std::strerror(err));
  }
  s->size += static_cast<int64_t>(out.size());
  s->last_hash = prev;
  s->trail_start.clear();
  s->newline_first = false;
  return OkStatus();
}


VerifyResult VerifyChain(const std::vector<std::string>& files) {
  VerifyResult r;
  std::string prev_hash;
  bool first = true;
  for (const std::string& f : files) {
    std::ifstream in(f);
    if (!in) {
      r.ok = false;
      r.file = f;
      r.problem = "cannot open the file";
      return r;
    }
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      auto fail = [&](const std::string& why) {
        r.ok = false;
        r.file = f;
        r.line_number = n;
        r.problem = why;
        return r;
      };
      std::string content, prev, hash;
      if (!SplitChain(line, &content, &prev, &hash)) return fail("not a chained audit line (edited, truncated or inserted)");
      if (LineHash(prev, content) != hash) return fail("this line was edited");
      if (!first && prev != prev_hash) {
        return fail("the chain breaks before this line: a line before it was removed, inserted or reordered");
      }
      if (first) {
        // Where the trail starts: a genesis line, a file that says what it continues, or (from
        // a version before the start annotation) a line whose previous hash is zeros. Anything
        // else is a trail whose first lines were cut.
        std::optional<std::string> start = TrailStart(content);
        if (start && *start == "genesis" && prev == kZeroHash) {
          r.starts = "genesis";
        } else if (start && start->starts_with("continues ") && prev != kZeroHash) {
          r.starts = *start;
          r.continues_hash = prev;
        } else if (start && *start == "resumes after an unreadable line" && prev == kZeroHash) {
          r.starts = *start;
        } else if (!start && prev == kZeroHash) {
          r.starts = "genesis";
        } else {
          return fail("the trail's head was cut: its first line neither starts a trail nor says which file it continues");
        }
      }
      first = false;
      prev_hash = hash;
      ++r.lines;
    }
  }
  r.last_hash = prev_hash;
  return r;
}

}  // namespace sigil::audit
