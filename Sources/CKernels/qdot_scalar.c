// Scalar reference kernels: the definition every SIMD kernel is tested against.
//
// Each block's integer sum Σ q·a is exact; blocks combine in f32 as
//     sumf += (d_w · d_a) · isum      (one product per block)
//     summ += m · s_a                 (legacy kinds with an offset or minimum)
//     summ -= (dmin · d_a) · msum     (k-quants with minimums)
// and the result is sumf + summ. The SIMD kernels keep the same per-block formulas and
// differ only in the order the f32 terms are added. The nibble kinds read their
// activations in the paired layout (`sq_paired_half`).
#include "qdot_internal.h"

static float dot_q8_0(size_t nb, const uint8_t *w, const sq_act *a) {
    float sumf = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 34 * b;
        const int8_t *q = (const int8_t *)(x + 2), *y = a->qs + 32 * b;
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += q[j] * y[j];
        sumf += (sq_f16(x) * a->d[2 * b]) * (float)isum;
    }
    return sumf;
}

// Q4_0 and Q4_1: 4-bit q in 0…15; Q4_0's −8 offset is the minimum −8·d.
static float dot_q4(size_t nb, const uint8_t *w, const sq_act *a, int has_min) {
    const size_t bytes = has_min ? 20 : 18;
    float sumf = 0, summ = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + bytes * b, *qs = x + bytes - 16;
        const int8_t *lo = sq_paired_half(a->qs, nb, b, 0), *hi = sq_paired_half(a->qs, nb, b, 1);
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) isum += (qs[j] & 0x0F) * lo[j] + (qs[j] >> 4) * hi[j];
        float d = sq_f16(x), m = has_min ? sq_f16(x + 2) : -8.0f * d;
        sumf += (d * a->d[2 * b]) * (float)isum;
        summ += m * a->d[2 * b + 1];
    }
    return sumf + summ;
}
static float dot_q4_0(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q4(nb, w, a, 0); }
static float dot_q4_1(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q4(nb, w, a, 1); }

// Q5_0 and Q5_1: 5-bit q in 0…31; Q5_0's −16 offset is the minimum −16·d.
static float dot_q5(size_t nb, const uint8_t *w, const sq_act *a, int has_min) {
    const size_t bytes = has_min ? 24 : 22;
    float sumf = 0, summ = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + bytes * b, *qs = x + bytes - 16;
        uint32_t qh = sq_u32(x + bytes - 20);
        const int8_t *ylo = sq_paired_half(a->qs, nb, b, 0), *yhi = sq_paired_half(a->qs, nb, b, 1);
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) {
            int lo = (qs[j] & 0x0F) | (int)((qh >> j) & 1) << 4;
            int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            isum += lo * ylo[j] + hi * yhi[j];
        }
        float d = sq_f16(x), m = has_min ? sq_f16(x + 2) : -16.0f * d;
        sumf += (d * a->d[2 * b]) * (float)isum;
        summ += m * a->d[2 * b + 1];
    }
    return sumf + summ;
}
static float dot_q5_0(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q5(nb, w, a, 0); }
static float dot_q5_1(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q5(nb, w, a, 1); }

static float dot_iq4_nl(size_t nb, const uint8_t *w, const sq_act *a) {
    float sumf = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 18 * b, *qs = x + 2;
        const int8_t *lo = sq_paired_half(a->qs, nb, b, 0), *hi = sq_paired_half(a->qs, nb, b, 1);
        int32_t isum = 0;
        for (int j = 0; j < 16; j++)
            isum += sq_iq4_values[qs[j] & 0x0F] * lo[j] + sq_iq4_values[qs[j] >> 4] * hi[j];
        sumf += (sq_f16(x) * a->d[2 * b]) * (float)isum;
    }
    return sumf;
}

static float dot_iq4_xs(size_t nb, const uint8_t *w, const sq_act *a) {
    float sumf = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 136 * b;
        const int8_t *y = a->qs + 256 * b;
        int sc[8];
        sq_iq4xs_scales(x, sc);
        int32_t isum = 0;
        for (int g = 0; g < 8; g++) {
            const uint8_t *qs = x + 8 + 16 * g;
            const int8_t *yg = y + 32 * g;
            int32_t gsum = 0;
            for (int l = 0; l < 16; l++)
                gsum += sq_iq4_values[qs[l] & 0x0F] * yg[l] + sq_iq4_values[qs[l] >> 4] * yg[l + 16];
            isum += sc[g] * gsum;
        }
        sumf += (sq_f16(x) * a->d[b]) * (float)isum;
    }
    return sumf;
}

static float dot_q2_k(size_t nb, const uint8_t *w, const sq_act *a) {
    const int16_t *bsums = (const int16_t *)a->aux;
    float sumf = 0, summ = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 84 * b;
        const int8_t *y = a->qs + 256 * b;
        int32_t isum = 0, msum = 0;
        for (int g = 0; g < 16; g++) {
            // Group g = 8h + 2s + k holds weights 16g…16g+15, bits 2s of qs[32h + 16k + l].
            int h = g / 8, s = (g / 2) % 4, k = g % 2;
            const uint8_t *q = x + 16 + 32 * h + 16 * k;
            int32_t gsum = 0;
            for (int l = 0; l < 16; l++) gsum += ((q[l] >> (2 * s)) & 3) * y[16 * g + l];
            isum += (x[g] & 0x0F) * gsum;
            msum += (x[g] >> 4) * bsums[16 * b + g];
        }
        float da = a->d[b];
        sumf += (sq_f16(x + 80) * da) * (float)isum;
        summ -= (sq_f16(x + 82) * da) * (float)msum;
    }
    return sumf + summ;
}

static float dot_q3_k(size_t nb, const uint8_t *w, const sq_act *a) {
    const int16_t *bsums = (const int16_t *)a->aux;
    float sumf = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 110 * b, *hmask = x;
        const int8_t *y = a->qs + 256 * b;
        int8_t sc[16];
        sq_q3k_scales(x + 96, sc);
        int32_t isum = 0;
        for (int g = 0; g < 16; g++) {
            int h = g / 8, s = (g / 2) % 4, k = g % 2;
            const uint8_t *q = x + 32 + 32 * h + 16 * k, *hm = hmask + 16 * k;
            int32_t gsum = 0;
            for (int l = 0; l < 16; l++) {
                int v = ((q[l] >> (2 * s)) & 3) | (((hm[l] >> (4 * h + s)) & 1) << 2);  // q + 4, 0…7
                gsum += v * y[16 * g + l];
            }
            isum += sc[g] * (gsum - 4 * bsums[16 * b + g]);
        }
        sumf += (sq_f16(x + 108) * a->d[b]) * (float)isum;
    }
    return sumf;
}

// Q4_K and Q5_K: 8 groups of 32 (group 2c from the low nibbles of qs[32c…], 2c+1 the high).
static float dot_q45_k(size_t nb, const uint8_t *w, const sq_act *a, int five) {
    const int16_t *bsums = (const int16_t *)a->aux;
    const size_t bytes = five ? 176 : 144;
    float sumf = 0, summ = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + bytes * b, *qh = x + 16, *qs = x + (five ? 48 : 16);
        const int8_t *y = a->qs + 256 * b;
        const int16_t *bs = bsums + 16 * b;
        int32_t isum = 0, msum = 0;
        for (int g = 0; g < 8; g++) {
            int sc, m;
            sq_scale_min_k4(x + 4, g, &sc, &m);
            const uint8_t *q = qs + 32 * (g / 2);
            int shift = 4 * (g % 2);
            int32_t gsum = 0;
            for (int l = 0; l < 32; l++) {
                int v = (q[l] >> shift) & 0x0F;
                if (five) v |= ((qh[l] >> g) & 1) << 4;
                gsum += v * y[32 * g + l];
            }
            isum += sc * gsum;
            msum += m * (bs[2 * g] + bs[2 * g + 1]);
        }
        float da = a->d[b];
        sumf += (sq_f16(x) * da) * (float)isum;
        summ -= (sq_f16(x + 2) * da) * (float)msum;
    }
    return sumf + summ;
}
static float dot_q4_k(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_k(nb, w, a, 0); }
static float dot_q5_k(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_k(nb, w, a, 1); }

static float dot_q6_k(size_t nb, const uint8_t *w, const sq_act *a) {
    const int16_t *bsums = (const int16_t *)a->aux;
    float sumf = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 210 * b;
        const int8_t *y = a->qs + 256 * b, *sc = (const int8_t *)(x + 192);
        int32_t isum = 0;
        for (int g = 0; g < 16; g++) {
            // Weight 128h + 32s + l: low bits nibble s/2 of ql[64h + 32(s%2) + l], high bits 2s of qh[32h + l].
            int h = g / 8, s = (g / 2) % 4, k = g % 2;
            const uint8_t *ql = x + 64 * h + 32 * (s % 2) + 16 * k, *qh = x + 128 + 32 * h + 16 * k;
            int32_t gsum = 0;
            for (int l = 0; l < 16; l++) {
                int v = ((ql[l] >> (4 * (s / 2))) & 0x0F) | (((qh[l] >> (2 * s)) & 3) << 4);  // q + 32
                gsum += v * y[16 * g + l];
            }
            isum += sc[g] * (gsum - 32 * bsums[16 * b + g]);
        }
        sumf += (sq_f16(x + 208) * a->d[b]) * (float)isum;
    }
    return sumf;
}

void sq_register_scalar(sq_dot_fn t[SQ_TYPE_LIMIT]) {
    t[SQ_Q8_0] = dot_q8_0;
    t[SQ_Q4_0] = dot_q4_0;
    t[SQ_Q4_1] = dot_q4_1;
    t[SQ_Q5_0] = dot_q5_0;
    t[SQ_Q5_1] = dot_q5_1;
    t[SQ_IQ4_NL] = dot_iq4_nl;
    t[SQ_IQ4_XS] = dot_iq4_xs;
    t[SQ_Q2_K] = dot_q2_k;
    t[SQ_Q3_K] = dot_q3_k;
    t[SQ_Q4_K] = dot_q4_k;
    t[SQ_Q5_K] = dot_q5_k;
    t[SQ_Q6_K] = dot_q6_k;
}
