#include "runtime/preprocess.h"

#include <math.h>
#include <string.h>

/* torch.Tensor.std default: unbiased (N − 1); SAELens adds eps to the std. */
#define LAYER_NORM_EPS 1e-5

saemon_row_stats saemon_preprocess_row(const float *in, float *out, size_t d_in, saemon_norm norm)
{
    saemon_row_stats st = {0};
    /* Four independent accumulators: one chain of dependent double adds
     * costs ~4 cycles an element, a fixed cost per token that dominates
     * small (subset) encodes. A float squared cannot overflow a double, so
     * the sum of squares is finite exactly when every element is. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
    size_t i = 0;
    for (; i + 4 <= d_in; i += 4) {
        double a = in[i], b = in[i + 1], c = in[i + 2], d = in[i + 3];
        s0 += a, s1 += b, s2 += c, s3 += d;
        q0 += a * a, q1 += b * b, q2 += c * c, q3 += d * d;
    }
    for (; i < d_in; i++) {
        double v = in[i];
        s0 += v;
        q0 += v * v;
    }
    double sum = (s0 + s1) + (s2 + s3), sumsq = (q0 + q1) + (q2 + q3);
    st.nonfinite = !isfinite(sumsq);
    st.input_norm = (float)sqrt(sumsq);

    double shift = 0.0, scale = 1.0;
    if (norm == SAEMON_NORM_CONSTANT_NORM_RESCALE) {
        scale = sqrt((double)d_in) / sqrt(sumsq);
    } else if (norm == SAEMON_NORM_LAYER_NORM) {
        shift = sum / (double)d_in;
        double var = 0.0;
        for (size_t i = 0; i < d_in; i++) {
            double c = in[i] - shift;
            var += c * c;
        }
        var /= (double)d_in - 1.0;
        scale = 1.0 / (sqrt(var) + LAYER_NORM_EPS);
    }
    st.shift = shift;
    st.scale = scale;
    if (norm == SAEMON_NORM_NONE) { /* (x − 0)·1 in double rounds back to x */
        memcpy(out, in, d_in * sizeof *out);
        return st;
    }
    for (size_t j = 0; j < d_in; j++)
        out[j] = (float)(((double)in[j] - shift) * scale);
    return st;
}
