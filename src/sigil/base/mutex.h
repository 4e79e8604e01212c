// base/mutex.h: an annotated mutex and scoped lock, so clang's -Wthread-safety can check
// SIGIL_GUARDED_BY members. Thread safety: that is the point.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "sigil/base/thread_annotations.h"

namespace sigil {

class SIGIL_CAPABILITY("mutex") Mutex {
 public:
  void Lock() SIGIL_ACQUIRE() { mu_.lock(); }
  void Unlock() SIGIL_RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class SIGIL_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) SIGIL_ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() SIGIL_RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

// A condition variable that waits on a held sigil::Mutex.
class CondVar {
 public:
  void Wait(Mutex* mu) SIGIL_REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu->native(), std::adopt_lock);
    cv_.wait(lk);
    lk.release();
  }
  // Returns false on timeout.
  bool WaitFor(Mutex* mu, std::chrono::nanoseconds d) SIGIL_REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu->native(), std::adopt_lock);
    bool signalled = cv_.wait_for(lk, d) == std::cv_status::no_timeout;
    lk.release();
    return signalled;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace sigil
