/* Readers for the public releases SAELens converts on the fly (its
 * pretrained_sae_loaders.py): Gemma Scope 2, Llama Scope (and its R1 distill
 * variant), dictionary_learning. Each fills a dict_spec for the shared
 * safetensors load path (runtime/dict_spec.c); docs/formats.md has the mapping. */
#ifndef SAEMON_DICT_RELEASES_H
#define SAEMON_DICT_RELEASES_H

#include "runtime/dict_spec.h"

/* Reads the folder's config files (and tensor shapes from `f`) into `spec`. */
typedef saemon_status (*dict_configure_fn)(const char *dir, const st_file *f, dict_spec *spec,
                                           saemon_error *err);

/* Open dir/weights as safetensors, run `configure`, load (runtime/dict_load.c). */
saemon_status dict_open_safetensors(const char *dir, const char *weights,
                                    dict_configure_fn configure, const saemon_dict_load_options *opts,
                                    saemon_dict **out, saemon_error *err);

saemon_status dict_configure_gemmascope2(const char *dir, const st_file *f, dict_spec *spec,
                                         saemon_error *err);
saemon_status dict_configure_llamascope(const char *dir, const st_file *f, dict_spec *spec,
                                        saemon_error *err);
saemon_status dict_configure_llamascope_r1(const char *dir, const st_file *f, dict_spec *spec,
                                           saemon_error *err);
saemon_status dict_configure_dictionary_learning(const char *dir, const st_file *f,
                                                 dict_spec *spec, saemon_error *err);

#endif
