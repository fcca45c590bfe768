/* `saemon produce` replays a .npy into a ring exactly: streams, positions,
 * rows, end-of-stream; refusal and a missing consumer exit with status 1. */
#include <criterion/criterion.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "saemon/npy.h"
#include "saemon/ring.h"
#include "tests/support/support.h"

extern char **environ;

static pid_t spawn_cli(const char *const *args)
{
    const char *cli = getenv("SAEMON_CLI");
    cr_assert(cli, "SAEMON_CLI not set");
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)cli;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, cli, NULL, NULL, argv, environ), 0);
    return pid;
}

/* Serve `r` until the child exits and the ring is empty; returns its status. */
static int serve_until_exit(saemon_ring *r, pid_t pid, saemon_frame *frames, int max, int *n)
{
    int status = -1;
    bool done = false;
    *n = 0;
    static float rows[64][8];
    for (;;) {
        saemon_frame f;
        int rc = saemon_ring_next(r, &f, 5, NULL);
        if (rc == 1 && *n < max) {
            frames[*n] = f;
            if (f.n_rows)
                memcpy(rows[*n], f.rows, sizeof rows[0]);
            frames[*n].rows = rows[*n];
            (*n)++;
            continue;
        }
        if (done)
            return status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            done = true;
    }
}

Test(produce, replays_streams_positions_rows)
{
    char *dir = test_tmpdir();
    float data[2 * 3 * 8];
    for (int i = 0; i < 48; i++)
        data[i] = (float)i * 0.5f - 3.0f;
    char path[512];
    snprintf(path, sizeof path, "%s/acts.npy", dir);
    size_t shape[3] = {2, 3, 8};
    cr_assert_eq(saemon_npy_write_f32(path, data, 3, shape, NULL), SAEMON_OK);

    char name[64];
    snprintf(name, sizeof name, "t%ld-produce", (long)getpid());
    saemon_ring_options o = {.name = name, .slots = 16, .d_in = 8, .hook = "blocks.3.hook_resid_post"};
    saemon_ring *r = NULL;
    cr_assert_eq(saemon_ring_create(&o, &r, NULL), SAEMON_OK);
    const char *args[] = {"produce", "--ring", name, "--input", path, "--first-stream", "10", NULL};
    saemon_frame fr[16];
    int n;
    int status = serve_until_exit(r, spawn_cli(args), fr, 16, &n);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    cr_assert_eq(n, 8, "2 streams x (3 tokens + end-of-stream)");
    for (int s = 0; s < 2; s++) {
        for (int t = 0; t < 3; t++) {
            saemon_frame *f = &fr[s * 4 + t];
            cr_assert_eq(f->stream, 10u + (unsigned)s);
            cr_assert_eq(f->token, (uint64_t)t);
            cr_assert_eq(f->n_rows, 1);
            cr_assert(!f->gap);
            cr_assert_arr_eq(f->rows, data + (s * 3 + t) * 8, 8 * sizeof(float));
        }
        cr_assert(fr[s * 4 + 3].end_of_stream);
        cr_assert_eq(fr[s * 4 + 3].token, 3);
    }
    saemon_ring_stats st;
    saemon_ring_get_stats(r, &st);
    cr_assert_str_eq(st.hook, "blocks.3.hook_resid_post", "announced the hook saemon expects");
    cr_assert_str_eq(st.model, "acts.npy");

    /* a wrong hook is refused: exit status 1 */
    const char *bad[] = {"produce", "--ring", name, "--input", path, "--hook", "blocks.4.hook_resid_post", NULL};
    status = serve_until_exit(r, spawn_cli(bad), fr, 16, &n);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    cr_assert_eq(n, 0);
    saemon_ring_destroy(r);

    /* issue 21 item 8: lossless by default (before: 99 % dropped), --drop
     * imitates a live model and still exits 0 */
    cr_assert_eq(saemon_ring_create(&(saemon_ring_options){.name = name, .slots = 2, .d_in = 8}, &r, NULL), SAEMON_OK);
    static float big[400 * 8];
    size_t bshape[2] = {400, 8};
    for (int i = 0; i < 400 * 8; i++)
        big[i] = (float)(i % 97);
    char bpath[512];
    snprintf(bpath, sizeof bpath, "%s/big.npy", dir);
    cr_assert_eq(saemon_npy_write_f32(bpath, big, 2, bshape, NULL), SAEMON_OK);
    const char *lossless[] = {"produce", "--ring", name, "--input", bpath, "--single-stream", NULL};
    pid_t lpid = spawn_cli(lossless);
    int got = 0, status2 = -1;
    bool exited = false;
    for (;;) { /* a slow consumer */
        saemon_frame f;
        if (saemon_ring_next(r, &f, 5, NULL) == 1) {
            got++;
            usleep(200);
            continue;
        }
        if (exited)
            break;
        if (waitpid(lpid, &status2, WNOHANG) == lpid)
            exited = true;
    }
    cr_assert(WIFEXITED(status2) && WEXITSTATUS(status2) == 0, "status %d", status2);
    saemon_ring_stats bst;
    saemon_ring_get_stats(r, &bst);
    cr_assert_eq(bst.frames_dropped, 0, "lossless by default");
    cr_assert_eq(bst.tokens_received, 400);
    saemon_ring_destroy(r);

    /* nobody serves the ring */
    const char *none[] = {"produce", "--ring", name, "--input", path, "--wait", "50", NULL};
    pid_t pid = spawn_cli(none);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    test_rmtree(dir);
    free(dir);
}
