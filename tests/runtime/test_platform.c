/* Public view of the kernels and the machine (saemon/kernels.h,
 * saemon/topology.h), as `saemon inspect --kernels / --topology` uses it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saemon/saemon.h"

Test(kernels, list_runnable_reason_and_choice)
{
    size_t n = saemon_kernel_get_count();
    cr_assert_gt(n, 0);
    size_t chosen = 0, scalar = 0, reference = 0;
    saemon_kernel_info k;
    for (size_t i = 0; i < n; i++) {
        cr_assert(saemon_kernel_get(i, &k));
        cr_assert(k.name && *k.name && k.family && *k.family);
        if (k.runnable)
            cr_expect_str_eq(k.why_not, "", "%s", k.name);
        else
            cr_expect(!strncmp(k.why_not, "needs ", 6), "%s: '%s'", k.name, k.why_not);
        cr_expect(!k.chosen || k.runnable, "%s chosen but not runnable", k.name);
        chosen += k.chosen;
        reference += k.reference;
        cr_expect(k.reason && *k.reason, "%s: no reason given", k.name);
        cr_expect(!k.reference || !k.chosen || getenv("SAEMON_ISA"), "the reference %s chosen unasked", k.name);
        if (!strcmp(k.family, "scalar")) {
            scalar++;
            cr_expect(k.runnable, "the scalar reference runs everywhere");
        }
    }
    cr_assert_eq(chosen, 1);
    cr_assert_geq(scalar, 1);
    cr_assert_eq(reference, 1, "exactly one variant is marked as the reference");
    cr_assert_not(saemon_kernel_get(n, &k));
    cr_assert_not_null(saemon_cpu_features_string());
}

Test(kernels, choice_follows_saemon_isa)
{
    cr_assert_eq(setenv("SAEMON_ISA", "scalar", 1), 0);
    saemon_kernel_info k;
    for (size_t i = 0; saemon_kernel_get(i, &k); i++)
        if (k.chosen)
            cr_expect_str_eq(k.family, "scalar");
    unsetenv("SAEMON_ISA");
}

Test(topology, describe_and_choose)
{
    saemon_error err = {0};
    saemon_topology *t = NULL;
    cr_assert_eq(saemon_topology_create(&t, &err), SAEMON_OK, "%s", err.message);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    saemon_topology_print(t, f);
    fclose(f);
    cr_assert(strstr(text, "cores") && strstr(text, "allowed cpus"), "%s", text);
    free(text);
    unsigned pus[8];
    char warning[256];
    cr_assert_eq(saemon_topology_choose(t, NULL, NULL, 1, pus, 8, warning, sizeof warning, &err), 1, "%s",
                 err.message);
    /* a list that names no allowed CPU: nothing chosen, a message */
    cr_assert_eq(saemon_topology_choose(t, "100000", NULL, 1, pus, 8, warning, sizeof warning, &err), 0);
    cr_assert_neq(err.message[0], '\0');
    saemon_topology_destroy(t);
}
