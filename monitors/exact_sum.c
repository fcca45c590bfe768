#include "monitors/exact_sum.h"

#include <math.h>
#include <string.h>

/* Add the 128-bit value (lo, hi) shifted left by `shift` bits, sign-extended. */
static void add_shifted(exact_sum *s, uint64_t mant, unsigned shift, int negative)
{
    uint64_t add[EXACT_SUM_WORDS] = {0};
    unsigned word = shift / 64, bit = shift % 64;
    add[word] = mant << bit;
    if (bit && word + 1 < EXACT_SUM_WORDS)
        add[word + 1] = mant >> (64 - bit);
    if (negative) { /* two's complement of add */
        unsigned carry = 1;
        for (int i = 0; i < EXACT_SUM_WORDS; i++) {
            uint64_t x = ~add[i];
            add[i] = x + carry;
            carry = carry && add[i] == 0;
        }
    }
    unsigned carry = 0;
    for (int i = 0; i < EXACT_SUM_WORDS; i++) {
        uint64_t a = s->w[i], t = a + add[i];
        unsigned c1 = t < a;
        uint64_t r = t + carry;
        unsigned c2 = r < t;
        s->w[i] = r;
        carry = c1 | c2;
    }
}

void exact_sum_add(exact_sum *s, float v, int negate)
{
    if (v == 0.0f || !isfinite(v))
        return;
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    unsigned exp = (bits >> 23) & 0xffu;
    uint64_t mant = bits & 0x7fffffu;
    /* value = mant * 2^(exp - 150) for normals (hidden bit added), mant * 2^-149 for subnormals */
    unsigned shift = exp ? exp - 1 : 0;
    if (exp)
        mant |= 0x800000u;
    add_shifted(s, mant, shift, (int)(bits >> 31) ^ (negate != 0));
}

double exact_sum_value(const exact_sum *s)
{
    uint64_t m[EXACT_SUM_WORDS];
    memcpy(m, s->w, sizeof m);
    int negative = (int)(m[EXACT_SUM_WORDS - 1] >> 63);
    if (negative) {
        unsigned carry = 1;
        for (int i = 0; i < EXACT_SUM_WORDS; i++) {
            m[i] = ~m[i] + carry;
            carry = carry && m[i] == 0;
        }
    }
    int top = EXACT_SUM_WORDS - 1;
    while (top >= 0 && m[top] == 0)
        top--;
    if (top < 0)
        return 0.0;
    /* 64 leading bits starting at the highest set bit, plus a sticky bit for
     * anything below, so the conversion to double rounds correctly. */
    int lead = __builtin_clzll(m[top]);
    uint64_t hi = m[top] << lead;
    uint64_t rest = 0;
    if (lead && top > 0)
        hi |= m[top - 1] >> (64 - lead);
    if (top > 0)
        rest = lead ? m[top - 1] << lead : m[top - 1];
    for (int i = top - 2; i >= 0; i--)
        rest |= m[i];
    if (rest)
        hi |= 1; /* sticky: the 11 bits a double drops are never all zero */
    double v = ldexp((double)hi, top * 64 + (64 - lead) - 64 - 149);
    return negative ? -v : v;
}
