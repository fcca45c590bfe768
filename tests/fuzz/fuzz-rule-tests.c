/* libFuzzer harness: any bytes through the rule unit test file parser
 * (rule_tests_parse_string; rule files are not read). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "monitors/rule_tests.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rule_test_file *tf = NULL;
    saemon_error err;
    if (rule_tests_parse_string((const char *)data, size, "fuzz.test.yaml", &tf, &err) != SAEMON_OK) {
        /* Every failure must carry a message naming the input. */
        if (strncmp(err.message, "fuzz.test.yaml", 14) != 0)
            __builtin_trap();
        return 0;
    }
    /* Parsed inputs must be usable token views: ascending indices. */
    for (size_t i = 0; i < tf->n_tests; i++)
        for (size_t j = 0; j < tf->tests[i].n_input; j++) {
            const rt_input *in = &tf->tests[i].input[j];
            for (size_t k = 1; k < in->nnz; k++)
                if (in->index[k - 1] >= in->index[k])
                    __builtin_trap();
        }
    rule_tests_free(tf);
    return 0;
}
