// NEON kernels (arm64) for Q8_0, Q4_0 and Q4_1. Baseline ARMv8 only (no dot-product
// extension): `vmull_s8` widens i8 × i8 to i16, `vpadalq_s16` adds pairs into i32.
// Q4's activations are in the paired layout (CKernels.h); each half is 16 contiguous bytes.
// Every product fits i16 (|w| ≤ 128, |a| ≤ 127).
#include "qdot_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>

static inline float half_n(const uint8_t *p) {
    __fp16 h;
    memcpy(&h, p, 2);
    return (float)h;
}

// acc + Σ a·b over 16 lanes, in four i32 lanes.
static inline int32x4_t dot16_n(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}

static float dot_q8_0_neon(size_t nb, const uint8_t *w, const sq_act *a) {
    float32x4_t acc = vdupq_n_f32(0);
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 34 * b;
        const int8_t *y = a->qs + 32 * b;
        int32x4_t p = dot16_n(vdupq_n_s32(0), vld1q_s8((const int8_t *)(x + 2)), vld1q_s8(y));
        p = dot16_n(p, vld1q_s8((const int8_t *)(x + 18)), vld1q_s8(y + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), half_n(x) * a->d[2 * b]);
    }
    return vaddvq_f32(acc);
}

static inline float dot_q4_neon(size_t nb, const uint8_t *w, const sq_act *a, int has_min) {
    const size_t bytes = has_min ? 20 : 18;
    float32x4_t acc = vdupq_n_f32(0);
    float summ = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + bytes * b;
        uint8x16_t q = vld1q_u8(x + bytes - 16);
        int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F)));
        int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
        int32x4_t p = dot16_n(vdupq_n_s32(0), lo, vld1q_s8(sq_paired_half(a->qs, nb, b, 0)));
        p = dot16_n(p, hi, vld1q_s8(sq_paired_half(a->qs, nb, b, 1)));
        float d = half_n(x);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(p), d * a->d[2 * b]);
        summ += (has_min ? half_n(x + 2) : -8.0f * d) * a->d[2 * b + 1];
    }
    return vaddvq_f32(acc) + summ;
}
static float dot_q4_0_neon(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q4_neon(nb, w, a, 0); }
static float dot_q4_1_neon(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q4_neon(nb, w, a, 1); }

void sq_register_neon(sq_dot_fn t[SQ_TYPE_LIMIT]) {
    t[SQ_Q8_0] = dot_q8_0_neon;
    t[SQ_Q4_0] = dot_q4_0_neon;
    t[SQ_Q4_1] = dot_q4_1_neon;
}

#else
void sq_register_neon(sq_dot_fn t[SQ_TYPE_LIMIT]) { (void)t; }
#endif
