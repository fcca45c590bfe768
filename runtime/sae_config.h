/* cfg.json → config structs: SAELens (v6 and older flat layouts, upgraded the
 * way SAELens' handle_pre_6_0_config does) and EleutherAI sparsify. */
#ifndef SAEMON_SAE_CONFIG_H
#define SAEMON_SAE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "saemon/dict.h"
#include "saemon/error.h"

typedef struct sae_config {
    size_t d_in, d_sae;
    saemon_arch arch;
    size_t k;                          /* topk only */
    bool rescale_acts_by_decoder_norm; /* topk only */
    bool apply_b_dec_to_input;
    char *normalize_activations;       /* after upgrade: "none", "layer_norm", ... */
    saemon_norm norm;                  /* run-time op (none for expected_average_only_in) */
    bool needs_scaling_factor;         /* expected_average_only_in: fold a dataset factor */
    bool reshape_hook_z;
    bool old_format;                   /* flat pre-6.0 layout was upgraded */
    char *dtype;                       /* compute dtype as written (default "float32") */
    char *hook_name, *model_name, *neuronpedia_id; /* NULL when absent */
} sae_config;

/* Parse SAELens cfg.json text (len bytes, need not be NUL-terminated).
 * `label` names the file in messages. */
saemon_status sae_config_parse(const char *text, size_t len, const char *label, sae_config *out,
                               saemon_error *err);
void sae_config_free(sae_config *cfg);

typedef struct sparsify_config {
    size_t d_in, num_latents, k;
    bool transcode;
} sparsify_config;

/* Parse sparsify cfg.json; refuses groupmax, skip_connection and signed. */
saemon_status sparsify_config_parse(const char *text, size_t len, const char *label,
                                    sparsify_config *out, saemon_error *err);

/* JSON helpers shared with the other config readers (runtime/dict_releases.c). */
struct cJSON;
/* One JSON object with no duplicate keys and nothing after it; NULL + *st on error. */
struct cJSON *cfg_parse_object(const char *text, size_t len, const char *label, saemon_error *err,
                               saemon_status *st);
/* A required positive integer (exact in a double). */
saemon_status cfg_need_size(const struct cJSON *v, const char *label, const char *key,
                            size_t *out, saemon_error *err);
/* An optional string copied to *out (NULL when absent or null). */
saemon_status cfg_opt_string(const struct cJSON *v, const char *label, const char *key,
                             char **out, saemon_error *err);
/* Read a small config file whole (NUL-terminated; caller frees *text). */
saemon_status cfg_read_file(const char *path, char **text, size_t *len, saemon_error *err);
/* Read and parse a JSON object file (caller cJSON_Deletes *root). */
saemon_status cfg_read_object(const char *path, struct cJSON **root, size_t *bytes,
                              saemon_error *err);

#endif
