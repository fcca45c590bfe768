/* saemon — status codes and the error record every fallible call fills. */
#ifndef SAEMON_ERROR_H
#define SAEMON_ERROR_H

#include "saemon/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum saemon_status {
    SAEMON_OK = 0,
    SAEMON_ERR_IO,          /* open/read/write/mmap failed (errno text in message) */
    SAEMON_ERR_FORMAT,      /* malformed file: header, JSON, npy, safetensors */
    SAEMON_ERR_SHAPE,       /* shapes disagree (tensor vs cfg, input d_in vs dictionary) */
    SAEMON_ERR_UNSUPPORTED, /* valid input that saemon does not handle (dtype, option) */
    SAEMON_ERR_NOMEM,       /* allocation failed or a size overflowed */
    SAEMON_ERR_RULES,       /* rule file invalid (message carries file:line:column) */
    SAEMON_ERR_MISMATCH,    /* rule file pinned to another dictionary */
    SAEMON_ERR_ARG,         /* caller passed an invalid argument */
    SAEMON_ERR_VALUE,       /* non-finite or out-of-range numbers in weights */
} saemon_status;

#define SAEMON_ERROR_MESSAGE_MAX 1024

/* Filled by a failing call: a code and a one-line, human-readable message that
 * names the file, tensor or line:column at fault. */
typedef struct saemon_error {
    saemon_status code;
    char message[SAEMON_ERROR_MESSAGE_MAX];
} saemon_error;

/* Short stable name of a status ("format", "shape", ...). */
SAEMON_API const char *saemon_status_name(saemon_status code);

#ifdef __cplusplus
}
#endif
#endif
