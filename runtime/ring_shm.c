/* The ring's shared-memory segment: created owner-only by the consumer,
 * replacing the segment of a consumer that died, and retired on destroy.
 * Locks (open-file-description locks, released by the kernel when the owner
 * dies): byte 0 = producer, byte 1 = consumer. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/error.h"
#include "runtime/ring_internal.h"

static int lock_byte(int fd, int which)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = which, .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl);
}

bool ring_lock_held(int fd, int which)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = which, .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return false;
    return fl.l_type != F_UNLCK;
}

/* An existing segment under our name: refuse if a live consumer holds it or
 * it belongs to another user; otherwise mark it retired (its producer
 * re-attaches to ours) and unlink it. */
static saemon_status replace_stale(saemon_ring *r, saemon_error *err)
{
    int fd = shm_open(r->shm_name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return SAEMON_OK;
        return saemon_error_set(err, SAEMON_ERR_IO, "ring %s: cannot open the existing segment %s: %s",
                                r->name, r->shm_name, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_IO,
                                "ring %s: segment %s exists and belongs to another user", r->name,
                                r->shm_name);
    }
    if (lock_byte(fd, 1) != 0) {
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_ARG,
                                "ring %s is already served by another running saemon (segment %s)",
                                r->name, r->shm_name);
    }
    if (st.st_size >= (off_t)RING_HEADER_BYTES) {
        ring_header *old = mmap(NULL, RING_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (old != MAP_FAILED) {
            if (old->magic == RING_MAGIC)
                __atomic_store_n(&old->state, RING_STATE_RETIRED, __ATOMIC_RELEASE);
            munmap(old, RING_HEADER_BYTES);
        }
    }
    shm_unlink(r->shm_name);
    close(fd);
    return SAEMON_OK;
}

static uint64_t random_epoch(void)
{
    uint64_t e = 0;
    if (getrandom(&e, sizeof e, GRND_NONBLOCK) != (ssize_t)sizeof e)
        e = ring_now_ns() ^ ((uint64_t)getpid() << 32);
    return e ? e : 1;
}

/* Free bytes of the file system holding the segment (/dev/shm). */
static unsigned long long free_bytes(int fd)
{
    struct statvfs vfs;
    if (fstatvfs(fd, &vfs) != 0)
        return 0;
    return (unsigned long long)vfs.f_bavail * vfs.f_frsize;
}

/* Create the segment under r->shm_name, back every page of it now (a full
 * /dev/shm fails here, with the sizes, instead of raising SIGBUS at the first
 * touch of a page later), map it (at `at` with MAP_FIXED when not NULL) and
 * write a fresh header. */
static saemon_status make_segment(saemon_ring *r, void *at, int *fd_out, void **map_out, saemon_error *err)
{
    uint64_t verdict_bytes = (uint64_t)r->verdict_entries * 8u;
    uint64_t slots_offset = RING_HEADER_BYTES + ((verdict_bytes + 4095u) & ~(uint64_t)4095u);
    uint64_t size = slots_offset + (uint64_t)r->n_slots * r->slot_bytes;
    if (size > ((uint64_t)1 << 36))
        return saemon_error_set(err, SAEMON_ERR_ARG, "ring %s: %llu bytes is too large", r->name,
                                (unsigned long long)size);

    int fd = shm_open(r->shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return saemon_error_set(err, SAEMON_ERR_IO, "ring %s: cannot create %s: %s", r->name,
                                r->shm_name, strerror(errno));
    struct stat sb;
    if (fchmod(fd, 0600) != 0 || ftruncate(fd, (off_t)size) != 0 || fstat(fd, &sb) != 0
        || lock_byte(fd, 1) != 0) {
        int e = errno;
        shm_unlink(r->shm_name);
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_IO, "ring %s: cannot size/lock %s: %s", r->name,
                                r->shm_name, strerror(e));
    }
    int fe = posix_fallocate(fd, 0, (off_t)size);
    if (fe != 0) {
        unsigned long long avail = free_bytes(fd);
        shm_unlink(r->shm_name);
        close(fd);
        if (fe == ENOSPC || fe == EFBIG)
            return saemon_error_set(err, SAEMON_ERR_IO,
                                    "ring %s: /dev/shm is too small for the segment %s: it needs %llu bytes "
                                    "(%.1f MiB), %llu bytes (%.1f MiB) are free; use fewer or smaller rings "
                                    "(slots, max_rows) or a larger /dev/shm",
                                    r->name, r->shm_name, (unsigned long long)size, (double)size / 1048576.0,
                                    avail, (double)avail / 1048576.0);
        return saemon_error_set(err, SAEMON_ERR_IO, "ring %s: cannot back the %llu bytes of %s: %s", r->name,
                                (unsigned long long)size, r->shm_name, strerror(fe));
    }
    void *map = mmap(at, size, PROT_READ | PROT_WRITE, MAP_SHARED | (at ? MAP_FIXED : 0), fd, 0);
    if (map == MAP_FAILED) {
        int e = errno;
        shm_unlink(r->shm_name);
        close(fd);
        return saemon_error_set(err, SAEMON_ERR_IO, "ring %s: mmap of %llu bytes: %s", r->name,
                                (unsigned long long)size, strerror(e));
    }
    ring_header *h = map; /* fresh pages are zero */
    h->magic = RING_MAGIC;
    h->version = RING_VERSION;
    h->header_bytes = RING_HEADER_BYTES;
    h->epoch = random_epoch();
    h->slots = r->n_slots;
    h->slot_bytes = r->slot_bytes;
    h->slots_offset = slots_offset;
    h->segment_bytes = size;
    h->verdict_entries = r->verdict_entries;
    h->expected_d_in = r->expected_d_in;
    h->verdict_offset = RING_HEADER_BYTES;
    h->consumer_pid = (uint32_t)getpid();
    h->consumer_heartbeat_ns = ring_now_ns();
    memcpy(h->expected_hook, r->expected_hook, sizeof h->expected_hook);
    __atomic_store_n(&h->state, RING_STATE_READY, __ATOMIC_RELEASE);
    r->dev = sb.st_dev;
    r->ino = sb.st_ino;
    *fd_out = fd;
    *map_out = map;
    return SAEMON_OK;
}

saemon_status ring_segment_create(saemon_ring *r, saemon_error *err)
{
    saemon_status st = replace_stale(r, err);
    if (st != SAEMON_OK)
        return st;
    int fd;
    void *map;
    st = make_segment(r, NULL, &fd, &map, err);
    if (st != SAEMON_OK)
        return st;
    const ring_header *h = map;
    r->fd = fd;
    r->map_bytes = h->segment_bytes;
    r->h = map;
    r->slots = (uint8_t *)map + h->slots_offset;
    r->verdicts = (uint64_t *)((uint8_t *)map + RING_HEADER_BYTES);
    __atomic_store_n(&r->map, map, __ATOMIC_RELEASE);
    if (!ring_guard_register(r)) {
        ring_segment_destroy(r);
        return saemon_error_set(err, SAEMON_ERR_IO,
                                "ring %s: cannot guard the mapping against SIGBUS (too many rings in one "
                                "process, or no SIGBUS handler could be installed)",
                                r->name);
    }
    return SAEMON_OK;
}

/* After the SIGBUS guard replaced the mapping with zero pages: unlink the
 * broken segment (if the name is still ours), create a fresh one and map it
 * over the same addresses, so no other thread ever sees them unmapped. The
 * fd number stays the same (dup2), for the lock checks of other threads. */
/* Unlink the name only if it still refers to our segment (another
 * consumer may have replaced it). */
static void unlink_if_ours(const saemon_ring *r)
{
    int fd = shm_open(r->shm_name, O_RDONLY | O_CLOEXEC, 0);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino)
            shm_unlink(r->shm_name);
        close(fd);
    }
}

saemon_status ring_segment_recreate(saemon_ring *r, saemon_error *err)
{
    /* Tell a producer still mapping the broken segment to re-attach: write
     * `state` through the fd (a write cannot fault as an access could). */
    struct stat old;
    if (fstat(r->fd, &old) == 0 && old.st_size >= (off_t)RING_HEADER_BYTES) {
        uint32_t retired = RING_STATE_RETIRED;
        (void)!pwrite(r->fd, &retired, sizeof retired, (off_t)offsetof(ring_header, state));
    }
    unlink_if_ours(r);
    int nfd;
    void *map;
    pthread_mutex_lock(&r->lock);
    saemon_status s = make_segment(r, r->map, &nfd, &map, err);
    if (s == SAEMON_OK) {
        if (dup3(nfd, r->fd, O_CLOEXEC) < 0) {
            close(r->fd);
            r->fd = nfd;
        } else {
            close(nfd);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return s;
}

void ring_segment_destroy(saemon_ring *r)
{
    if (!r->map)
        return;
    ring_guard_unregister(r);
    __atomic_store_n(&r->h->state, RING_STATE_RETIRED, __ATOMIC_RELEASE);
    unlink_if_ours(r);
    munmap(r->map, r->map_bytes);
    close(r->fd);
    r->map = NULL;
    r->h = NULL;
    r->fd = -1;
}
