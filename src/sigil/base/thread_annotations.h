// base/thread_annotations.h: clang -Wthread-safety attributes; no-ops under other compilers.
#pragma once

#if defined(__clang__)
#define SIGIL_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define SIGIL_THREAD_ANNOTATION_(x)
#endif

#define SIGIL_CAPABILITY(x) SIGIL_THREAD_ANNOTATION_(capability(x))
#define SIGIL_SCOPED_CAPABILITY SIGIL_THREAD_ANNOTATION_(scoped_lockable)
#define SIGIL_GUARDED_BY(x) SIGIL_THREAD_ANNOTATION_(guarded_by(x))
#define SIGIL_PT_GUARDED_BY(x) SIGIL_THREAD_ANNOTATION_(pt_guarded_by(x))
#define SIGIL_REQUIRES(...) SIGIL_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define SIGIL_EXCLUDES(...) SIGIL_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define SIGIL_ACQUIRE(...) SIGIL_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define SIGIL_RELEASE(...) SIGIL_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define SIGIL_NO_THREAD_SAFETY_ANALYSIS SIGIL_THREAD_ANNOTATION_(no_thread_safety_analysis)
