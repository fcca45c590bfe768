/* libFuzzer: arbitrary bytes as a sinks file. The sinks are closed first,
 * so a valid file is parsed completely but opens nothing (no files written,
 * no commands run, no connections): every add fails "the sinks are closed".
 * Every failure must name the file (file:line:col or file:). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saemon/sinks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    saemon_sinks *sinks = NULL;
    saemon_error err = {0};
    if (saemon_sinks_create(&sinks, &err) != SAEMON_OK)
        abort();
    saemon_sinks_stop(sinks, NULL); /* closed: add() refuses, nothing opens */
    saemon_status s = saemon_sinks_add_config_string(sinks, (const char *)data, size, "fuzz.yaml", &err);
    if (s == SAEMON_OK && saemon_sinks_count(sinks) != 0)
        abort();
    if (s != SAEMON_OK && strncmp(err.message, "fuzz.yaml", 9) != 0)
        __builtin_trap();
    saemon_sinks_destroy(sinks);
    return 0;
}
