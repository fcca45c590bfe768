/* Gemma Scope params.npz -> saemon_dict, as SAELens'
 * gemma_2_sae_huggingface_loader does (docs/formats.md "Gemma Scope"). */
#ifndef SAEMON_GEMMASCOPE_H
#define SAEMON_GEMMASCOPE_H

#include <stddef.h>

#include "saemon/dict.h"

/* Map and load the .npz file at npz_path. `given` is what the caller passed
 * to saemon_dict_open (the folder or the file), recorded as info.path. */
saemon_status gemmascope_open(const char *npz_path, const char *given, const saemon_dict_load_options *opts,
                              saemon_dict **out, saemon_error *err);

/* Load from `len` bytes in memory. npz_path names the file in messages and
 * supplies the layer_L/width_W/average_l0_N convention (hook, name, width
 * check, embedding rescale); it need not exist. */
saemon_status gemmascope_load(const void *bytes, size_t len, const char *npz_path,
                              const char *given, saemon_dict **out, saemon_error *err);

#endif
