/* A one-line progress bar on stderr: drawn when stderr is a terminal (or
 * when forced with --progress), redrawn at most 10 times a second. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "suite.h"

static struct {
    int on;
    size_t total, done;
    double frac, t_start, last_draw;
    char label[96];
    int drawn;
} bar;

static void draw(int force)
{
    if (!bar.on)
        return;
    double now = clock_now_s();
    if (!force && now - bar.last_draw < 0.1)
        return;
    bar.last_draw = now;
    double f = bar.total ? ((double)bar.done + bar.frac) / (double)bar.total : 1.0;
    if (f > 1)
        f = 1;
    enum { W = 30 };
    char cells[W + 1];
    int full = (int)(f * W);
    for (int i = 0; i < W; i++)
        cells[i] = i < full ? '#' : '.';
    cells[W] = 0;
    int el = (int)(now - bar.t_start);
    fprintf(stderr, "\r[%s] %3.0f%% %zu/%zu %02d:%02d %-60.60s", cells, 100 * f, bar.done, bar.total,
            el / 60, el % 60, bar.label);
    fflush(stderr);
    bar.drawn = 1;
}

void progress_init(size_t total_units, int force)
{
    memset(&bar, 0, sizeof bar);
    bar.on = force || isatty(STDERR_FILENO);
    bar.total = total_units;
    bar.t_start = clock_now_s();
}

void progress_begin(const char *label)
{
    snprintf(bar.label, sizeof bar.label, "%s", label);
    bar.frac = 0;
    draw(1);
}

void progress_update(double fraction)
{
    bar.frac = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
    draw(0);
}

void progress_end_unit(void)
{
    if (bar.done < bar.total)
        bar.done++;
    bar.frac = 0;
    draw(0);
}

void progress_clear(void)
{
    if (bar.on && bar.drawn) {
        fprintf(stderr, "\r%*s\r", 120, "");
        fflush(stderr);
        bar.drawn = 0;
    }
}

void progress_finish(void)
{
    if (!bar.on)
        return;
    bar.done = bar.total;
    snprintf(bar.label, sizeof bar.label, "done");
    draw(1);
    fputc('\n', stderr);
    bar.on = 0;
}
