// A process-wide count of heap allocations, to prove the training step allocates nothing.
//
// On glibc the malloc family is interposed (see AllocCount.c): each call bumps one relaxed
// atomic counter and forwards to glibc's own allocator, so behaviour is unchanged. Elsewhere
// counting is unavailable and the count stays 0.
#ifndef DISTTRAIN_CALLOCCOUNT_H
#define DISTTRAIN_CALLOCCOUNT_H

/// Number of malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc and
/// pvalloc calls made so far by any thread of this process.
unsigned long long dt_allocation_count(void);

/// The same count restricted to the calling thread (a thread-local counter), so a test can
/// measure its own code while other threads allocate.
unsigned long long dt_thread_allocation_count(void);

/// 1 when allocations are being counted (glibc), 0 otherwise.
int dt_allocation_counting_available(void);

#endif
