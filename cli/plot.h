/* PNG plots with gnuplot (Debian gnuplot-nox) for features and backtest. */
#ifndef SAEMON_CLI_PLOT_H
#define SAEMON_CLI_PLOT_H

#include <stdbool.h>

/* Run gnuplot on `script` (which must write to the file named by the
 * gnuplot variable `out`), producing `png` through a temporary file and a
 * rename. A missing gnuplot is reported and returns true (plots are
 * optional); a failing one returns false after a message. */
bool auth_plot(const char *what, const char *png, const char *script);

#endif
