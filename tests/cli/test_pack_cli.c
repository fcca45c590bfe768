/* `saemon pack` on a real trained dictionary (../shared/data/sae/listcomp-toy,
 * JumpReLU): runs on the whole pack and on a subset pack cut by the rules
 * give the source's alerts (the whole pack's stored kernel form used in place);
 * `inspect` shows a pack, its packed kernels and labels, and `--verify` checks it;
 * a rule outside a subset pack is refused naming the latent. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cli/cli_run.h"
#include "tests/support/support.h"

static const char *RULES = "version: 1\n"
                           "rules:\n"
                           "  - {name: f3, condition: {feature: 3, above: 0.5}}\n"
                           "  - {name: any, condition: {any: [{feature: 10, above: 1.0}, {feature: 50, above: 1.0},"
                           " {feature: 90, above: 0.3}]}, for: 2}\n"
                           "  - {name: mean, condition: {feature: 7, mean_over: 3, above: 0.2}}\n";

static cli_result must(const char *const *args, int code, const char *in_err)
{
    cli_result r = cli_run(args);
    cr_assert_eq(r.exit_code, code, "saemon %s %s: exit %d\n%s", args[0], args[1], r.exit_code, r.err);
    if (in_err)
        cr_assert(strstr(r.err, in_err) || strstr(r.out, in_err), "expected '%s':\n%s%s", in_err, r.out, r.err);
    return r;
}

static char *alerts(const char *sae, const char *acts, const char *rules, const char *mode, const char *path)
{
    const char *args[] = {"run", "--sae", sae, "--rules", rules, "--input", acts, "--encode", mode,
                          "--alerts", path, NULL};
    cli_result r = must(args, 0, NULL);
    cli_result_free(&r);
    char *text = slurp(path);
    cr_assert_not_null(text);
    /* drop the timestamps: "timestamp":"..." */
    for (char *t; (t = strstr(text, "\"timestamp\":\""));) {
        char *end = strchr(t + 13, '"');
        memmove(t, end + 1, strlen(end + 1) + 1);
    }
    return text;
}

Test(pack_cli, packs_give_the_source_alerts, .timeout = 120)
{
    char *sae = test_shared_path("data/sae/listcomp-toy/saelens"), *acts = test_shared_path("data/sae/listcomp-toy/acts.npy");
    if (!sae || !acts)
        cr_skip_test("needs ../shared/data/sae/listcomp-toy; skipped");
    char *dir = test_tmpdir();
    char *rules = test_write_file(dir, "rules.yaml", RULES, strlen(RULES));
    char whole[4096], sub[4096], a[4][4096];
    snprintf(whole, sizeof whole, "%s/whole.pack", dir);
    snprintf(sub, sizeof sub, "%s/sub.pack", dir);
    for (int i = 0; i < 4; i++)
        snprintf(a[i], sizeof a[i], "%s/a%d.jsonl", dir, i);
    static const char LABELS[] = "{\"3\": \"opening bracket\", \"90\": \"list comprehension keyword\"}";
    char *labels = test_write_file(dir, "labels.json", LABELS, strlen(LABELS));
    cli_result r = must((const char *const[]){"pack", sae, "-o", whole, "--labels", labels, NULL}, 0,
                        "100 of 100 latents");
    cr_assert(strstr(r.err, "stored the packed form of kernel"), "%s", r.err);
    cli_result_free(&r);
    /* the kernel this CPU chooses is stored and used in place; the labels are shown */
    r = must((const char *const[]){"inspect", whole, NULL}, 0, "(what this CPU chooses: used in place)");
    cr_assert(strstr(r.out, "labels         2 features labelled, e.g. 3: opening bracket"), "%s", r.out);
    cr_assert(strstr(r.out, "saemon pack, version 2 (whole)"), "%s", r.out);
    cli_result_free(&r);
    r = must((const char *const[]){"run", "--sae", whole, "--rules", rules, "--input", acts, "--encode", "all", NULL},
             0, "used in place from the pack (mapped, shared)");
    cli_result_free(&r);
    r = must((const char *const[]){"pack", sae, "-o", sub, "--rules", rules, NULL}, 0, "5 of 100 latents");
    cli_result_free(&r);
    r = must((const char *const[]){"inspect", sub, NULL}, 0, "latents        5 of 100: 3,7,10,50,90");
    cr_assert(strstr(r.out, "saemon pack, version 2 (subset)"), "%s", r.out);
    cli_result_free(&r);
    r = must((const char *const[]){"inspect", whole, "--verify", NULL}, 0, "data sha256 ok");
    cli_result_free(&r);

    /* the whole pack carries the labels into the alerts: the source with feature_labels: gives the same */
    char *labelled = NULL, *lrules = NULL;
    cr_assert(asprintf(&labelled, "feature_labels: %s\n%s", labels, RULES) > 0);
    lrules = test_write_file(dir, "lrules.yaml", labelled, strlen(labelled));
    char a4[4096];
    snprintf(a4, sizeof a4, "%s/a4.jsonl", dir);
    char *src = alerts(sae, acts, rules, "all", a[0]), *pw = alerts(whole, acts, rules, "all", a[1]),
         *pa = alerts(whole, acts, rules, "auto", a[2]), *ps = alerts(sub, acts, rules, "auto", a[3]),
         *srcl = alerts(sae, acts, lrules, "all", a4);
    cr_assert_gt(strlen(src), 100, "the rules should fire on real data");
    cr_assert(strstr(srcl, "opening bracket") || strstr(srcl, "list comprehension keyword"), "%s", srcl);
    cr_assert_str_eq(pw, srcl, "whole pack, --encode all");
    cr_assert_str_eq(pa, srcl, "whole pack, subset plan");
    cr_assert_str_eq(ps, src, "subset pack");
    free(srcl), free(labelled), free(lrules);

    /* a rule watching a latent the subset pack does not hold */
    static const char OUT[] = "version: 1\nrules:\n  - {name: f4, condition: {feature: 4, above: 0.5}}\n";
    char *out = test_write_file(dir, "out.yaml", OUT, strlen(OUT));
    r = must((const char *const[]){"run", "--sae", sub, "--rules", out, "--input", acts, NULL}, 1,
             "latent 4 is not in this pack");
    cli_result_free(&r);
    r = must((const char *const[]){"pack", sae, "-o", sub, "--latents", "3,x", NULL}, 2, "--latents '3,x'");
    cli_result_free(&r);
    free(src), free(pw), free(pa), free(ps), free(out), free(rules), free(labels), free(sae), free(acts);
    test_rmtree(dir);
    free(dir);
}
