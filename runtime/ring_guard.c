/* SIGBUS guard of the ring mappings. Any process allowed to open a ring
 * read-write can shrink its segment (ftruncate), and a page of a tmpfs that
 * ran out of room cannot be faulted in: the next access to such a page raises
 * SIGBUS. Nothing in the ring's protocol may kill the consumer, so a SIGBUS
 * whose address lies in a registered ring mapping is answered by mapping
 * private zero pages over the whole mapping (the faulting access is then
 * retried and reads zeros; no frame passes validation on zeros) and flagging
 * the ring: the consumer thread sees the flag at its next saemon_ring_next
 * and replaces the segment (ring.c, ring_recover). Wayland compositors guard
 * client shm pools the same way. A SIGBUS anywhere else goes to the handler
 * that was installed before ours, or kills the process as it would have. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/ring_internal.h"

#define GUARD_MAX 1024

static saemon_ring *guarded[GUARD_MAX]; /* __atomic builtins */
static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int installed;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
    uintptr_t addr = (uintptr_t)info->si_addr;
    for (size_t i = 0; i < GUARD_MAX; i++) {
        saemon_ring *r = __atomic_load_n(&guarded[i], __ATOMIC_ACQUIRE);
        if (!r)
            continue;
        uintptr_t start = (uintptr_t)__atomic_load_n(&r->map, __ATOMIC_ACQUIRE);
        size_t len = __atomic_load_n(&r->map_bytes, __ATOMIC_ACQUIRE);
        if (!start || addr < start || addr - start >= len)
            continue;
        /* The raw system call: async-signal-safe, and not seen by a
         * sanitizer's mmap interceptor (ThreadSanitizer would model it as a
         * write of the whole mapping racing every other thread's atomic
         * load of the header; the kernel swaps the pages atomically). */
        if ((void *)syscall(SYS_mmap, (void *)start, len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
            break; /* cannot recover: fall through to the default action */
        __atomic_store_n(&r->faulted, 1, __ATOMIC_RELEASE);
        return;
    }
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) {
            previous.sa_sigaction(sig, info, ctx);
            return;
        }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* Not ours and nobody else's: die of it as without this handler (the
     * faulting instruction runs again under the default action). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGBUS, &dfl, NULL);
    if (info->si_code <= 0) /* sent by kill(): re-send it */
        raise(SIGBUS);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous) == 0)
        installed = 1;
}

bool ring_guard_register(saemon_ring *r)
{
    pthread_once(&install_once, install);
    if (!installed)
        return false;
    for (size_t i = 0; i < GUARD_MAX; i++) {
        saemon_ring *expected = NULL;
        if (__atomic_compare_exchange_n(&guarded[i], &expected, r, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return true;
    }
    return false;
}

void ring_guard_unregister(saemon_ring *r)
{
    for (size_t i = 0; i < GUARD_MAX; i++) {
        saemon_ring *expected = r;
        if (__atomic_compare_exchange_n(&guarded[i], &expected, NULL, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return;
    }
}
