/* Dense linear probes loaded as a dictionary (runtime/dict_probe.c). */
#ifndef SAEMON_RUNTIME_DICT_PROBE_H
#define SAEMON_RUNTIME_DICT_PROBE_H

#include "saemon/dict.h"
#include "saemon/error.h"

/* Load DIR/probe.json + DIR/probe.safetensors. */
saemon_status dict_probe_open(const char *dir, saemon_dict **out, saemon_error *err);

#endif
