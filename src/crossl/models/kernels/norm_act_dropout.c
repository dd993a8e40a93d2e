/* LayerNorm over channels -> PReLU (one slope per channel) -> inverted dropout, forward and
 * backward, in one pass over memory each way.
 *
 * Layout: `rows` rows of `channels` contiguous float32 values (a (batch, time, channels) tensor
 * viewed as (batch * time, channels)). Dropout keeps element i (its flat index, row * channels +
 * channel) when keep_bits(seed, i) >= threshold, a counter-based hash: the backward pass
 * recomputes the mask instead of reading a stored one, and crossl.models.native.keep_mask states
 * the same hash with torch integer ops (the tests compare them bit for bit).
 *
 * Forward stores each row's mean and 1/std; backward recomputes the normalised values from the
 * input. The per-channel gradients (LayerNorm weight and bias, PReLU slope) are summed per thread
 * in double precision and then added together.
 *
 * Storage: float32, or bfloat16 (what bf16 autocast gives the convolutions, fast on CPUs with bf16
 * instructions) with every operation in float32 as the float32 variant does it: a bf16 value
 * widens exactly, and each stored result is rounded to the nearest bf16, ties to even, as torch
 * rounds. One body serves both: the per-row functions are inlined with the storage a constant, so
 * each variant's loops are compiled (and vectorised) for its own type.
 *
 * Built by crossl.models.native with `cc -O3 -march=native -fopenmp -shared -fPIC`; the OpenMP
 * runtime is the one torch has already loaded (same soname), so threads come from one pool.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHANNELS 4096

/* A 32-bit integer hash with good avalanche (two multiply-xorshift rounds). */
static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* Two rounds keyed by the two halves of the seed: calls with different seeds draw unrelated masks. */
static inline uint32_t keep_bits(uint32_t seed_lo, uint32_t seed_hi, uint32_t index) {
    return mix32(mix32(index ^ seed_lo) + seed_hi);
}

int crossl_max_channels(void) { return MAX_CHANNELS; }

/* bf16 -> float32 is exact: the bf16 bits are the float's upper half. */
static inline float widen_bf16(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* float32 -> bf16, round to nearest, ties to even; a NaN stays a quiet NaN. */
static inline uint16_t round_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffU) > 0x7f800000U) return (uint16_t)0x7fc0U;
    return (uint16_t)((u + 0x7fffU + ((u >> 16) & 1U)) >> 16);
}

#define INLINE static inline __attribute__((always_inline))

INLINE float load(const void *p, int64_t i, const int bf16) {
    return bf16 ? widen_bf16(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

INLINE void store(void *p, int64_t i, float v, const int bf16) {
    if (bf16)
        ((uint16_t *)p)[i] = round_bf16(v);
    else
        ((float *)p)[i] = v;
}

/* One row of the forward: out = dropout(prelu(layer_norm(x))). */
INLINE void forward_row(const void *restrict x, const float *restrict weight, const float *restrict bias,
                        const float *restrict slope, void *restrict out, float *restrict mean_out, float *restrict rstd_out,
                        int64_t r, int64_t channels, float eps, uint32_t threshold, float scale, uint32_t seed_lo,
                        uint32_t seed_hi, const int bf16) {
    const float inv_c = 1.0f / (float)channels;
    const int64_t row = r * channels;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < channels; ++c) sum += load(x, row + c, bf16);
    const float mean = sum * inv_c;
    float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
    for (int64_t c = 0; c < channels; ++c) {
        const float d = load(x, row + c, bf16) - mean;
        sq += d * d;
    }
    const float rstd = 1.0f / sqrtf(sq * inv_c + eps);
    if (mean_out) {
        mean_out[r] = mean;
        rstd_out[r] = rstd;
    }
    const uint32_t base = (uint32_t)row;
    for (int64_t c = 0; c < channels; ++c) {
        const float z = (load(x, row + c, bf16) - mean) * rstd * weight[c] + bias[c];
        const float a = z > 0.0f ? z : z * slope[c];
        store(out, row + c, keep_bits(seed_lo, seed_hi, base + (uint32_t)c) >= threshold ? a * scale : 0.0f, bf16);
    }
}

/* The forward over all rows. x and out are float32, or bf16 (as uint16 bits) when `bf16` is 1;
 * weight, bias, slope and the row statistics are always float32. threshold 0 keeps every element
 * (pass scale 1 then). */
void crossl_norm_act_dropout_forward(const void *restrict x, const float *restrict weight, const float *restrict bias, const float *restrict slope,
                    void *restrict out, float *restrict mean_out, float *restrict rstd_out, int64_t rows, int64_t channels,
                    float eps, uint32_t threshold, float scale, uint32_t seed_lo, uint32_t seed_hi, int num_threads, int bf16) {
#pragma omp parallel for schedule(static) num_threads(num_threads)
    for (int64_t r = 0; r < rows; ++r) {
        if (bf16)
            forward_row(x, weight, bias, slope, out, mean_out, rstd_out, r, channels, eps, threshold, scale, seed_lo, seed_hi, 1);
        else
            forward_row(x, weight, bias, slope, out, mean_out, rstd_out, r, channels, eps, threshold, scale, seed_lo, seed_hi, 0);
    }
}

/* One row of the backward: its input gradient, and its terms of the per-channel gradients added
 * to sum_w / sum_b / sum_s. */
INLINE void backward_row(const void *restrict grad_out, const void *restrict x, float mean, float rstd,
                         const float *restrict weight, const float *restrict bias, const float *restrict slope,
                         void *restrict grad_x, float *restrict sum_w, float *restrict sum_b, float *restrict sum_s,
                         float *restrict gxhat, float *restrict xhat, int64_t r, int64_t channels, uint32_t threshold,
                         float scale, uint32_t seed_lo, uint32_t seed_hi, const int bf16) {
    const float inv_c = 1.0f / (float)channels;
    const int64_t row = r * channels;
    const uint32_t base = (uint32_t)row;
    float sum_g = 0.0f, sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
    for (int64_t c = 0; c < channels; ++c) {
        const float xh = (load(x, row + c, bf16) - mean) * rstd;
        const float z = xh * weight[c] + bias[c];
        const float ga = keep_bits(seed_lo, seed_hi, base + (uint32_t)c) >= threshold ? load(grad_out, row + c, bf16) * scale : 0.0f;
        const float gz = z > 0.0f ? ga : ga * slope[c];
        sum_w[c] += gz * xh;
        sum_b[c] += gz;
        sum_s[c] += z > 0.0f ? 0.0f : ga * z;
        const float gxh = gz * weight[c];
        gxhat[c] = gxh;
        xhat[c] = xh;
        sum_g += gxh;
        sum_gx += gxh * xh;
    }
    const float mean_g = sum_g * inv_c, mean_gx = sum_gx * inv_c;
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) store(grad_x, row + c, rstd * (gxhat[c] - mean_g - xhat[c] * mean_gx), bf16);
}

/* Gradients of the forward above: grad_x (rows, channels; grad_out and grad_x in the storage of x)
 * and, summed over rows, grad_weight, grad_bias and grad_slope (channels each, float32,
 * overwritten). Each thread sums the per-channel terms of FLUSH_ROWS rows in float (vectorised),
 * then adds them to its double totals. */
#define FLUSH_ROWS 64
void crossl_norm_act_dropout_backward(const void *restrict grad_out, const void *restrict x, const float *restrict mean_in,
                     const float *restrict rstd_in, const float *restrict weight, const float *restrict bias,
                     const float *restrict slope, void *restrict grad_x, float *restrict grad_weight, float *restrict grad_bias,
                     float *restrict grad_slope, int64_t rows, int64_t channels, uint32_t threshold, float scale,
                     uint32_t seed_lo, uint32_t seed_hi, int num_threads, int bf16) {
    double *totals = calloc((size_t)(3 * channels), sizeof(double));
#pragma omp parallel num_threads(num_threads)
    {
        double *thread_totals = calloc((size_t)(3 * channels), sizeof(double)); /* weight, bias, slope */
        float *restrict sums = calloc((size_t)(3 * channels), sizeof(float));
        float *restrict sum_w = sums, *restrict sum_b = sums + channels, *restrict sum_s = sums + 2 * channels;
        float gxhat[MAX_CHANNELS];
        float xhat[MAX_CHANNELS];
        int64_t pending = 0;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            if (bf16)
                backward_row(grad_out, x, mean_in[r], rstd_in[r], weight, bias, slope, grad_x, sum_w, sum_b, sum_s, gxhat, xhat,
                             r, channels, threshold, scale, seed_lo, seed_hi, 1);
            else
                backward_row(grad_out, x, mean_in[r], rstd_in[r], weight, bias, slope, grad_x, sum_w, sum_b, sum_s, gxhat, xhat,
                             r, channels, threshold, scale, seed_lo, seed_hi, 0);
            if (++pending == FLUSH_ROWS) {
                for (int64_t i = 0; i < 3 * channels; ++i) {
                    thread_totals[i] += (double)sums[i];
                    sums[i] = 0.0f;
                }
                pending = 0;
            }
        }
        for (int64_t i = 0; i < 3 * channels; ++i) thread_totals[i] += (double)sums[i];
#pragma omp critical
        for (int64_t i = 0; i < 3 * channels; ++i) totals[i] += thread_totals[i];
        free(sums);
        free(thread_totals);
    }
    for (int64_t c = 0; c < channels; ++c) {
        grad_weight[c] = (float)totals[c];
        grad_bias[c] = (float)totals[channels + c];
        grad_slope[c] = (float)totals[2 * channels + c];
    }
    free(totals);
}
