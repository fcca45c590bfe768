/* Text from outside on its way to /metrics and logs (issue 24): the UTF-8
 * check producer names must pass, logfmt quoting, and label escaping that
 * turns invalid bytes into U+FFFD so a scrape stays valid. */
#include <criterion/criterion.h>
#include <string.h>

#include "base/utf8.h"
#include "serve/prom_text.h"

Test(text_escape, printable_utf8)
{
    cr_assert(utf8_printable("gpt2-small", 120, false));
    cr_assert(utf8_printable("modèle-日本語-🙂", 120, false));
    cr_assert(utf8_printable("", 120, true));
    cr_assert(!utf8_printable("", 120, false));
    cr_assert(!utf8_printable("bad\xff", 120, true), "invalid byte");
    cr_assert(!utf8_printable("\xc0\xaf", 120, true), "overlong");
    cr_assert(!utf8_printable("\xed\xa0\x80", 120, true), "surrogate");
    cr_assert(!utf8_printable("\xf4\x90\x80\x80", 120, true), "above U+10FFFF");
    cr_assert(!utf8_printable("\xe6\x97", 120, true), "truncated");
    cr_assert(!utf8_printable("a\nb", 120, true), "newline");
    cr_assert(!utf8_printable("a\x1b[31m", 120, true), "escape");
    cr_assert(!utf8_printable("a\x7f", 120, true), "DEL");
    cr_assert(!utf8_printable("a\xc2\x85", 120, true), "C1 NEL");
    char unterminated[4] = {'a', 'b', 'c', 'd'};
    cr_assert(!utf8_printable(unterminated, sizeof unterminated, true));
}

Test(text_escape, logfmt_quote)
{
    char q[64];
    cr_assert_str_eq(utf8_logfmt_quote(q, sizeof q, "x\" level=error msg=\"y"), "\"x\\\" level=error msg=\\\"y\"");
    cr_assert_str_eq(utf8_logfmt_quote(q, sizeof q, "a\\b\nc\xff" "é"), "\"a\\\\b\\x0ac\\xffé\"");
    cr_assert_str_eq(utf8_logfmt_quote(q, sizeof q, NULL), "\"\"");
    char small[8];
    cr_assert_str_eq(utf8_logfmt_quote(small, sizeof small, "abcdefghij"), "\"abcde\"", "truncated, still quoted");
}

Test(text_escape, label_values_stay_utf8)
{
    prom_text t = {0};
    prom_label l[] = {{"model", "a\"b\\c\nd\xff\xfe" "é"}};
    prom_sample_u64(&t, "m", l, 1, 1);
    cr_assert(!t.failed && t.buf);
    cr_assert_str_eq(t.buf, "m{model=\"a\\\"b\\\\c\\nd\xef\xbf\xbd\xef\xbf\xbd" "é\"} 1\n");
    prom_text_free(&t);
}
