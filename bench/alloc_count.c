/* Counts the heap allocations of the whole saemon-bench process, so the
 * batch-1 latency cells can report allocations per token (an allocation in
 * the hot path is a source of tail latency saemon owns). The program's own
 * malloc family interposes glibc's and forwards to it (__libc_*); free is
 * glibc's. Not under AddressSanitizer or ThreadSanitizer, whose runtimes
 * own malloc: bench_alloc_calls() then returns UINT64_MAX (not counted). */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

uint64_t bench_alloc_calls(void);

/* GCC names its sanitizers with macros, clang with __has_feature. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define BENCH_SANITIZED 1
#endif
#endif

#if defined(__GLIBC__) && !defined(BENCH_SANITIZED)
static uint64_t calls; /* only through the __atomic builtins */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define COUNT() __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED)

void *malloc(size_t n)
{
    COUNT();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    COUNT();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    COUNT();
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    COUNT();
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    COUNT();
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    COUNT();
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

uint64_t bench_alloc_calls(void)
{
    return __atomic_load_n(&calls, __ATOMIC_RELAXED);
}
#else
uint64_t bench_alloc_calls(void)
{
    return UINT64_MAX;
}
#endif
