/* saemon — a sidecar that encodes a live model's activations with a trained
 * sparse dictionary and fires alerts on chosen features.
 *
 *   saemon_dict_open()      load an SAE (cfg.json + sae_weights.safetensors)
 *   saemon_encoder_create() pick a kernel, pack weights
 *   saemon_encoder_encode() dense activations -> sparse features (CSR)
 *   saemon_rules_open()     YAML alert rules
 *   saemon_monitor_observe() evaluate rules token by token, alerts to a callback
 */
#ifndef SAEMON_H
#define SAEMON_H

#include "saemon/dict.h"
#include "saemon/encoder.h"
#include "saemon/error.h"
#include "saemon/kernels.h"
#include "saemon/npy.h"
#include "saemon/rules.h"
#include "saemon/sinks.h"
#include "saemon/topology.h"
#include "saemon/version.h"

#endif
