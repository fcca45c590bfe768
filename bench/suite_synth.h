/* Generated dictionaries as saemon dictionaries (suite_synth.c). */
#ifndef SAEMON_BENCH_SUITE_SYNTH_H
#define SAEMON_BENCH_SUITE_SYNTH_H

#include "saemon/dict.h"
#include "synth.h"

saemon_status suite_synth_dict(const bench_synth *s, const char *name, saemon_dict **out, saemon_error *err);

#endif
