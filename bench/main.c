/* saemon-bench-kernels: the kernel benchmark as its own program; the same
 * code runs as `saemon bench kernels`. */
#include "bench.h"

int main(int argc, char **argv)
{
    return bench_kernels_main(argc, argv);
}
