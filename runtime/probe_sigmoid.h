/* A sigmoid probe's scores (runtime/probe_sigmoid.c). */
#ifndef SAEMON_RUNTIME_PROBE_SIGMOID_H
#define SAEMON_RUNTIME_PROBE_SIGMOID_H

#include <stddef.h>
#include <stdint.h>

/* v[i] = 1 / (1 + exp(-v[i])) for n scores: exp is SLEEF's 1-ulp vector exp
 * in double for the instruction set the encoder's kernel needs
 * (cpu_features, SAEMON_CPU_* of kernels/kernel.h: AVX-512F 8 lanes, AVX2 4
 * lanes), its scalar exp otherwise; each score rounded once to float32. */
void saemon_probe_sigmoid(float *v, size_t n, uint32_t cpu_features);

#endif
