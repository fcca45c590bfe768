/* The Prometheus http_config part of a webhook / alertmanager sink in a
 * sinks file: headers, basic_auth, authorization, tls_config. */
#ifndef SAEMON_MONITORS_SINKS_SINKS_CONFIG_HTTP_H
#define SAEMON_MONITORS_SINKS_SINKS_CONFIG_HTTP_H

#include <stddef.h>

#include "base/yaml_walk.h"
#include "saemon/sinks.h"

/* Fill `out` from the keys of `sink` (a checked mapping). Every file is
 * checked at its node (secret files readable, certificates valid, key
 * matching); relative paths are taken relative to the sinks file, as
 * Prometheus does. Warnings are appended to warn (may be NULL). */
saemon_status sinks_config_http(walk *w, const yaml_node_t *sink, saemon_http_client *out, char *warn,
                                size_t wlen);

#endif
