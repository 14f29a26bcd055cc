// AVX-512 VNNI kernels for the 32-wide legacy kinds: `vpdpbusd` multiplies u8 × i8 and
// accumulates groups of four straight into i32, replacing AVX2's maddubs + madd pair
// (and its i16 intermediate). 256-bit registers (AVX-512 VL): a block is 32 bytes.
// The k-quants use the AVX2 kernels at this level.
#include "qdot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define SQ_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

SQ_VNNI static inline float half_v(const uint8_t *p) { return _cvtsh_ss(sq_u16(p)); }

SQ_VNNI static inline float hsum_v(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SQ_VNNI static inline __m256i nibbles_v(const uint8_t *p) {
    __m128i q = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

// Bit j of `bits` as 0x10 in byte j, through a mask register.
SQ_VNNI static inline __m256i fifth_v(uint32_t bits) {
    return _mm256_maskz_mov_epi8((__mmask32)bits, _mm256_set1_epi8(0x10));
}

// Σ over groups of four of |v| × sign(y, v): a signed × signed product through dpbusd.
SQ_VNNI static inline __m256i dot_signed_v(__m256i v, __m256i y) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(v), _mm256_sign_epi8(y, v));
}

SQ_VNNI static float dot_q8_0_vnni(size_t nb, const uint8_t *w, const sq_act *a) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t b = 0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *x0 = w + 34 * b, *x1 = x0 + 34;
        __m256i p0 = dot_signed_v(_mm256_loadu_si256((const __m256i *)(x0 + 2)),
                                  _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b)));
        __m256i p1 = dot_signed_v(_mm256_loadu_si256((const __m256i *)(x1 + 2)),
                                  _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b + 32)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_v(x0) * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half_v(x1) * a->d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        const uint8_t *x0 = w + 34 * b;
        __m256i p0 = dot_signed_v(_mm256_loadu_si256((const __m256i *)(x0 + 2)),
                                  _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_v(x0) * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_v(_mm256_add_ps(acc0, acc1));
}

SQ_VNNI static inline float dot_q45_vnni(size_t nb, const uint8_t *w, const sq_act *a, int five, int has_min) {
    const size_t bytes = 18 + (has_min ? 2 : 0) + (five ? 4 : 0);
    const float offset = five ? -16.0f : -8.0f;
    const float *s = (const float *)a->aux;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i zero = _mm256_setzero_si256();
    float summ = 0;
    size_t b = 0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *x0 = w + bytes * b, *x1 = x0 + bytes;
        __m256i q0 = nibbles_v(x0 + bytes - 16), q1 = nibbles_v(x1 + bytes - 16);
        if (five) {
            q0 = _mm256_or_si256(q0, fifth_v(sq_u32(x0 + bytes - 20)));
            q1 = _mm256_or_si256(q1, fifth_v(sq_u32(x1 + bytes - 20)));
        }
        __m256i p0 = _mm256_dpbusd_epi32(zero, q0, _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b)));
        __m256i p1 = _mm256_dpbusd_epi32(zero, q1, _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b + 32)));
        float d0 = half_v(x0), d1 = half_v(x1);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d1 * a->d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
        float m0 = has_min ? half_v(x0 + 2) : offset * d0, m1 = has_min ? half_v(x1 + 2) : offset * d1;
        summ += m0 * s[b];
        summ += m1 * s[b + 1];
    }
    for (; b < nb; b++) {
        const uint8_t *x0 = w + bytes * b;
        __m256i q0 = nibbles_v(x0 + bytes - 16);
        if (five) q0 = _mm256_or_si256(q0, fifth_v(sq_u32(x0 + bytes - 20)));
        __m256i p0 = _mm256_dpbusd_epi32(zero, q0, _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b)));
        float d0 = half_v(x0);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
        summ += (has_min ? half_v(x0 + 2) : offset * d0) * s[b];
    }
    return hsum_v(_mm256_add_ps(acc0, acc1)) + summ;
}
SQ_VNNI static float dot_q4_0_vnni(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_vnni(nb, w, a, 0, 0); }
SQ_VNNI static float dot_q4_1_vnni(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_vnni(nb, w, a, 0, 1); }
SQ_VNNI static float dot_q5_0_vnni(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_vnni(nb, w, a, 1, 0); }
SQ_VNNI static float dot_q5_1_vnni(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_vnni(nb, w, a, 1, 1); }

SQ_VNNI static float dot_iq4_nl_vnni(size_t nb, const uint8_t *w, const sq_act *a) {
    const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sq_iq4_values));
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t b = 0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *x0 = w + 18 * b, *x1 = x0 + 18;
        __m256i p0 = dot_signed_v(_mm256_shuffle_epi8(book, nibbles_v(x0 + 2)),
                                  _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b)));
        __m256i p1 = dot_signed_v(_mm256_shuffle_epi8(book, nibbles_v(x1 + 2)),
                                  _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b + 32)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_v(x0) * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half_v(x1) * a->d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        const uint8_t *x0 = w + 18 * b;
        __m256i p0 = dot_signed_v(_mm256_shuffle_epi8(book, nibbles_v(x0 + 2)),
                                  _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_v(x0) * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_v(_mm256_add_ps(acc0, acc1));
}

void sq_register_avx512(sq_dot_fn t[SQ_TYPE_LIMIT]) {
    t[SQ_Q8_0] = dot_q8_0_vnni;
    t[SQ_Q4_0] = dot_q4_0_vnni;
    t[SQ_Q4_1] = dot_q4_1_vnni;
    t[SQ_Q5_0] = dot_q5_0_vnni;
    t[SQ_Q5_1] = dot_q5_1_vnni;
    t[SQ_IQ4_NL] = dot_iq4_nl_vnni;
}

#else
void sq_register_avx512(sq_dot_fn t[SQ_TYPE_LIMIT]) { (void)t; }
#endif
