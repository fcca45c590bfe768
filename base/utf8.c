/* UTF-8 checks and escapes (base/utf8.h). */
#include "base/utf8.h"

#include <stdio.h>
#include <string.h>

size_t utf8_sequence(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool utf8_printable(const char *s, size_t max, bool allow_empty)
{
    const char *end = memchr(s, 0, max);
    if (!end || (end == s && !allow_empty))
        return false;
    const unsigned char *p = (const unsigned char *)s, *e = (const unsigned char *)end;
    while (p < e) {
        size_t k = utf8_sequence(p, (size_t)(e - p));
        if (k == 0)
            return false;
        if (k == 1 && (*p < 0x20 || *p == 0x7f))
            return false;
        if (k == 2 && p[0] == 0xc2 && p[1] < 0xa0) /* C1 controls U+0080..U+009F */
            return false;
        p += k;
    }
    return true;
}

char *utf8_logfmt_quote(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    dst[o++] = '"';
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    while (*p) {
        char esc[8];
        size_t k = utf8_sequence(p, n);
        const char *out = (const char *)p;
        size_t out_len = k;
        if (k == 0 || (k == 1 && (*p < 0x20 || *p == 0x7f))) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            out = esc, out_len = 4, k = 1;
        } else if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p;
            out = esc, out_len = 2;
        }
        if (o + out_len + 2 > cap)
            break;
        memcpy(dst + o, out, out_len);
        o += out_len;
        p += k;
        n -= k;
    }
    dst[o++] = '"';
    dst[o] = 0;
    return dst;
}
