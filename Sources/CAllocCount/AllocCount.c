// Interposes the malloc family so that heap allocations can be counted.
//
// A definition of malloc in the executable takes precedence over libc's for every library in
// the process (the dynamic linker binds to the first definition). Each wrapper adds one to a
// relaxed atomic counter and calls glibc's exported __libc_* entry point, which is the very
// allocator malloc would have used, so pointers stay compatible with free() and
// malloc_usable_size(). free() itself is not wrapped: releasing memory is not what we count.
#include "CAllocCount.h"
#include <stddef.h>

#if defined(__GLIBC__) || (defined(__linux__) && !defined(__ANDROID__) && __has_include(<gnu/libc-version.h>))
#include <errno.h>
#include <stdatomic.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

static _Atomic unsigned long long allocations;
static _Thread_local unsigned long long thread_allocations;

static inline void counted(void) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    thread_allocations++;
}

void *malloc(size_t size) { counted(); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { counted(); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { counted(); return __libc_realloc(pointer, size); }
void *memalign(size_t alignment, size_t size) { counted(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { counted(); return __libc_memalign(alignment, size); }
void *valloc(size_t size) { counted(); return __libc_valloc(size); }
void *pvalloc(size_t size) { counted(); return __libc_pvalloc(size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    counted();
    // POSIX: the alignment must be a power of two and a multiple of sizeof(void *).
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment % sizeof(void *) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

unsigned long long dt_allocation_count(void) { return atomic_load_explicit(&allocations, memory_order_relaxed); }
int dt_allocation_counting_available(void) { return 1; }
unsigned long long dt_thread_allocation_count(void) { return thread_allocations; }

#else

unsigned long long dt_allocation_count(void) { return 0; }
int dt_allocation_counting_available(void) { return 0; }
unsigned long long dt_thread_allocation_count(void) { return 0; }

#endif
