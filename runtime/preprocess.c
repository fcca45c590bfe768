#include "runtime/preprocess.h"

#include <math.h>

/* torch.Tensor.std default: unbiased (N − 1); SAELens adds eps to the std. */
#define LAYER_NORM_EPS 1e-5

saemon_row_stats saemon_preprocess_row(const float *in, float *out, size_t d_in, saemon_norm norm)
{
    saemon_row_stats st = {0};
    double sumsq = 0.0, sum = 0.0;
    for (size_t i = 0; i < d_in; i++) {
        double v = in[i];
        if (!isfinite(v))
            st.nonfinite = true;
        sum += v;
        sumsq += v * v;
    }
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
    for (size_t i = 0; i < d_in; i++)
        out[i] = (float)(((double)in[i] - shift) * scale);
    return st;
}
