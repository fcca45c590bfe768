/* The consumer against a hostile neighbour (issue 24): a producer that shrinks
 * the segment under it, a /dev/shm too small for the ring, a second consumer
 * of the same name, stats of a ring that was never created. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/ring/ring_test_util.h"

#define D 8
#define HOOK "h"

static saemon_ring *make_ring(const char *tag, char *name, size_t len)
{
    ring_test_name(name, len, tag);
    saemon_ring_options o = {.name = name, .slots = 8, .max_rows_per_frame = 4, .d_in = D, .hook = HOOK};
    saemon_ring *r = NULL;
    saemon_error err;
    cr_assert_eq(saemon_ring_create(&o, &r, &err), SAEMON_OK, "%s", err.message);
    return r;
}

static void shrink(const char *name, off_t to)
{
    char shm[128];
    snprintf(shm, sizeof shm, "%s%s", RING_SHM_PREFIX, name);
    int fd = shm_open(shm, O_RDWR, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, to), 0);
    close(fd);
}

/* Frames flow through a ring (a fresh C producer; the consumer judges its
 * announcement inside next()). */
static void frames_flow(saemon_ring *r, const char *name, uint64_t stream)
{
    saemon_producer *p = ring_test_attach_served(r, name, D, HOOK);
    cr_assert(p, "a producer attaches to the recreated segment");
    saemon_frame f;
    float rows[2 * D];
    ring_test_rows(rows, stream, 0, 2, D);
    cr_assert_eq(saemon_producer_publish(p, stream, 0, rows, 2), SAEMON_PRODUCER_OK);
    int got = 0;
    for (int i = 0; i < 50 && got != 1; i++)
        got = saemon_ring_next(r, &f, 100, NULL);
    cr_assert_eq(got, 1);
    cr_assert_eq(f.stream, stream);
    cr_assert(ring_test_rows_ok(f.rows, stream, 0, 2, D));
    saemon_ring_release(r);
    saemon_producer_detach(p);
}

Test(ring_hostile, producer_truncating_the_segment_is_survived_and_counted)
{
    char name[64];
    saemon_ring *r = make_ring("trunc", name, sizeof name);
    frames_flow(r, name, 3);
    shrink(name, 0); /* the header page, the verdicts and every slot are gone */
    saemon_frame f;
    cr_assert_geq(saemon_ring_next(r, &f, 0, NULL), 0, "the consumer survives");
    cr_assert_geq(saemon_ring_next(r, &f, 0, NULL), 0);
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.segment_faults, 1);
    cr_assert_eq(st.producer_state, SAEMON_RING_PRODUCER_NONE, "the old announcement is forgotten");
    frames_flow(r, name, 4);
    saemon_ring_destroy(r);
}

Test(ring_hostile, partial_shrink_and_an_idle_ring_and_verdict_writes)
{
    char name[64];
    saemon_ring *r = make_ring("idle", name, sizeof name);
    /* slots gone, header kept: an idle consumer only touches the header, the
     * verdict writer (another thread in serve) faults on the table */
    shrink(name, RING_HEADER_BYTES);
    saemon_frame f;
    cr_assert_eq(saemon_ring_next(r, &f, 20, NULL), 0);
    saemon_ring_set_verdict(r, 5, SAEMON_VERDICT_BLOCK); /* faults: zero pages now */
    cr_assert_geq(saemon_ring_next(r, &f, 20, NULL), 0);
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.segment_faults, 1);
    saemon_ring_set_verdict(r, 5, SAEMON_VERDICT_WARNING);
    cr_assert_eq(saemon_ring_get_verdict(r, 5), SAEMON_VERDICT_WARNING, "verdicts work on the new segment");
    /* again, all of it: counted again */
    shrink(name, 0);
    cr_assert_geq(saemon_ring_next(r, &f, 20, NULL), 0);
    saemon_ring_get_stats(r, &st);
    cr_assert_eq(st.segment_faults, 2);
    frames_flow(r, name, 9);
    saemon_ring_destroy(r);
}

Test(ring_hostile, a_sigbus_outside_every_ring_still_kills)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char name[64];
        saemon_ring *r = make_ring("other", name, sizeof name);
        (void)r;
        FILE *tmp = tmpfile();
        int fd = fileno(tmp);
        if (ftruncate(fd, 4096) != 0)
            _exit(2);
        volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (ftruncate(fd, 0) != 0)
            _exit(2);
        p[0] = 1; /* SIGBUS, not ours to swallow */
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    char shm[96]; /* the child died holding its ring: remove the segment it left */
    snprintf(shm, sizeof shm, "%st%ld-other", RING_SHM_PREFIX, (long)pid);
    shm_unlink(shm);
    /* killed by SIGBUS, or (under a sanitizer, whose handler was installed
     * before ours and is chained) a fault report and a failing exit */
    cr_assert((WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) || (WIFEXITED(status) && WEXITSTATUS(status) == 1),
              "status 0x%x", status);
}

Test(ring_hostile, stats_of_no_ring_are_zero)
{
    saemon_ring_stats st;
    memset(&st, 0xa5, sizeof st);
    saemon_ring_get_stats(NULL, &st);
    cr_assert_eq(st.tokens_received, 0);
    cr_assert_eq(st.frames_rejected_total, 0);
    cr_assert_eq(st.producer_pid, 0);
    cr_assert_eq(st.model[0], 0);
    cr_assert_str_eq(st.dtype, "");
    cr_assert_eq(st.last_frame_age_s, -1.0);
}

Test(ring_hostile, second_consumer_of_a_name_is_refused)
{
    char name[64];
    saemon_ring *r = make_ring("twice", name, sizeof name);
    saemon_ring_options o = {.name = name, .slots = 8, .d_in = D};
    saemon_ring *again = NULL;
    saemon_error err = {0};
    cr_assert_neq(saemon_ring_create(&o, &again, &err), SAEMON_OK);
    cr_assert_null(again);
    cr_assert(strstr(err.message, "already served"), "%s", err.message);
    saemon_ring_destroy(r);
}

/* A /dev/shm of 1 MiB in a private mount namespace (root only): a 4 MiB ring
 * fails at creation with the sizes, not with SIGBUS at the first write. */
Test(ring_hostile, full_dev_shm_fails_at_creation_with_the_sizes)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        char msg[1200] = "";
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0
            || mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") != 0) {
            snprintf(msg, sizeof msg, "SKIP %s", strerror(errno));
        } else {
            char name[64];
            ring_test_name(name, sizeof name, "tiny");
            saemon_ring_options o = {.name = name, .slots = 64, .max_rows_per_frame = 64, .d_in = 256};
            saemon_ring *r = NULL;
            saemon_error err = {0};
            if (saemon_ring_create(&o, &r, &err) == SAEMON_OK)
                snprintf(msg, sizeof msg, "created a 4 MiB ring on a 1 MiB /dev/shm");
            else
                snprintf(msg, sizeof msg, "%s", err.message);
            /* A ring that fits, shrunk by a producer while /dev/shm filled up:
             * it cannot be recreated, so it is dead (said in stats), next()
             * returns 0 meanwhile, and it comes back once there is room. */
            char small[64];
            ring_test_name(small, sizeof small, "small");
            saemon_ring_options so = {.name = small, .slots = 8, .max_rows_per_frame = 4, .d_in = 8};
            saemon_ring *s = NULL;
            if (saemon_ring_create(&so, &s, &err) != SAEMON_OK) {
                snprintf(msg, sizeof msg, "small ring: %s", err.message);
            } else {
                shrink(small, 0);
                FILE *filler = fopen("/dev/shm/filler", "w");
                static char block[4096];
                while (filler && fwrite(block, 1, sizeof block, filler) == sizeof block && fflush(filler) == 0)
                    ;
                if (filler)
                    fclose(filler);
                saemon_frame f;
                saemon_ring_stats st;
                int rc = saemon_ring_next(s, &f, 10, NULL);
                saemon_ring_get_stats(s, &st);
                if (rc != 0 || !st.dead || !strstr(st.dead_reason, "too small") || st.segment_faults != 1)
                    snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " | dead ring: rc %d dead %d faults %llu %s",
                             rc, st.dead, (unsigned long long)st.segment_faults, st.dead_reason);
                unlink("/dev/shm/filler");
                for (int i = 0; i < 40 && st.dead; i++) {
                    saemon_ring_next(s, &f, 100, NULL);
                    saemon_ring_get_stats(s, &st);
                }
                if (st.dead)
                    snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " | the ring did not come back");
                saemon_ring_destroy(s);
            }
        }
        (void)!write(pipefd[1], msg, strlen(msg));
        _exit(0);
    }
    close(pipefd[1]);
    char msg[1200] = "";
    ssize_t n = read(pipefd[0], msg, sizeof msg - 1);
    close(pipefd[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    msg[n > 0 ? n : 0] = 0;
    if (strncmp(msg, "SKIP", 4) == 0)
        cr_skip_test("no private mount namespace (needs root): %s", msg);
    cr_assert(strstr(msg, "/dev/shm is too small") && strstr(msg, "it needs ") && strstr(msg, "are free")
                  && !strstr(msg, " | "),
              "%s", msg);
}
