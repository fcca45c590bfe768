#include "cli/plot.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

bool auth_plot(const char *what, const char *png, const char *script)
{
    size_t pl = strlen(png);
    char *tmp_png = malloc(pl + 16), gp[] = "/tmp/saemon-plot-XXXXXX";
    if (!tmp_png)
        return false;
    snprintf(tmp_png, pl + 16, "%s.tmp.XXXXXX", png);
    int pfd = mkstemp(tmp_png), fd = pfd >= 0 ? mkstemp(gp) : -1;
    if (pfd < 0 || fd < 0) {
        fprintf(stderr, "saemon %s: --plot %s: cannot create a temporary file: %s\n", what, png, strerror(errno));
        if (pfd >= 0) {
            close(pfd);
            unlink(tmp_png);
        }
        free(tmp_png);
        return false;
    }
    close(pfd);
    FILE *f = fdopen(fd, "w");
    bool ok = f != NULL;
    if (ok) {
        /* the output name as a gnuplot string: single quotes, none inside */
        ok = !strchr(tmp_png, '\'') && fprintf(f, "out = '%s'\n%s", tmp_png, script) > 0;
        ok = fclose(f) == 0 && ok;
    }
    pid_t pid;
    char *argv[] = {"gnuplot", gp, NULL};
    int rc = ok ? posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ) : -1;
    int status = 0;
    if (rc == ENOENT) {
        fprintf(stderr, "saemon %s: --plot: gnuplot not found (apt-get install gnuplot-nox): no plot written\n",
                what);
        ok = true;
    } else if (rc != 0) {
        fprintf(stderr, "saemon %s: --plot: cannot run gnuplot: %s\n", what, strerror(rc > 0 ? rc : EIO));
        ok = false;
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && chmod(tmp_png, 0644) == 0 &&
             rename(tmp_png, png) == 0;
        if (!ok)
            fprintf(stderr, "saemon %s: --plot %s: gnuplot failed\n", what, png);
    }
    unlink(tmp_png);
    unlink(gp);
    free(tmp_png);
    return ok;
}
