// AVX2 kernels for the 32-wide legacy kinds (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL).
//
// Compiled with per-function target attributes, so the package needs no -march flag;
// `qdot.c` calls them only when `sq_cpu_level()` reports AVX2, FMA and F16C.
//
// The integer core is `maddubs` (u8 × i8 pairs summed to i16) then `madd` with ones
// (pairs of i16 summed to i32). Unsigned weights (4/5-bit q) go in the u8 operand as
// they are; signed ones (Q8_0, IQ4 codebook values) use |w| and sign(a, w), which keeps
// every i16 pair sum within ±128·127·2 < 32768 as long as activations are within ±127.
#include "qdot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define SQ_AVX2 __attribute__((target("avx2,fma,f16c")))

SQ_AVX2 static inline float half_avx2(const uint8_t *p) { return _cvtsh_ss(sq_u16(p)); }

SQ_AVX2 static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Eight i32 sums of u8 × i8 over groups of four bytes.
SQ_AVX2 static inline __m256i dot_u8i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// The 16 bytes of nibbles as 32 bytes: low nibbles (weights 0…15) then high (16…31).
SQ_AVX2 static inline __m256i unpack_nibbles(const uint8_t *p) {
    __m128i q = _mm_loadu_si128((const __m128i *)p);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Bit j of `bits` as 0x10 (set) or 0 in byte j.
SQ_AVX2 static inline __m256i fifth_bits(uint32_t bits) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i select = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, select), select);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

SQ_AVX2 static float dot_q8_0_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t b = 0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *x0 = w + 34 * b, *x1 = x0 + 34;
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(x0 + 2));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(x1 + 2));
        __m256i y0 = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b));
        __m256i y1 = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b + 32));
        __m256i p0 = dot_u8i8(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(y0, w0));
        __m256i p1 = dot_u8i8(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(y1, w1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(x0) * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(x1) * a->d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        const uint8_t *x0 = w + 34 * b;
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(x0 + 2));
        __m256i y0 = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b));
        __m256i p0 = dot_u8i8(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(y0, w0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(x0) * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_avx2(_mm256_add_ps(acc0, acc1));
}

// Q4_0/Q4_1 (five = 0) and Q5_0/Q5_1 (five = 1), with or without a stored minimum.
SQ_AVX2 static inline float dot_q45_avx2(size_t nb, const uint8_t *w, const sq_act *a, int five, int has_min) {
    const size_t bytes = 18 + (has_min ? 2 : 0) + (five ? 4 : 0);
    const float offset = five ? -16.0f : -8.0f;
    const float *s = (const float *)a->aux;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float summ = 0;
    size_t b = 0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *x0 = w + bytes * b, *x1 = x0 + bytes;
        __m256i q0 = unpack_nibbles(x0 + bytes - 16), q1 = unpack_nibbles(x1 + bytes - 16);
        if (five) {
            q0 = _mm256_or_si256(q0, fifth_bits(sq_u32(x0 + bytes - 20)));
            q1 = _mm256_or_si256(q1, fifth_bits(sq_u32(x1 + bytes - 20)));
        }
        __m256i p0 = dot_u8i8(q0, _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b)));
        __m256i p1 = dot_u8i8(q1, _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b + 32)));
        float d0 = half_avx2(x0), d1 = half_avx2(x1);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d1 * a->d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
        float m0 = has_min ? half_avx2(x0 + 2) : offset * d0, m1 = has_min ? half_avx2(x1 + 2) : offset * d1;
        summ += m0 * s[b];
        summ += m1 * s[b + 1];
    }
    for (; b < nb; b++) {
        const uint8_t *x0 = w + bytes * b;
        __m256i q0 = unpack_nibbles(x0 + bytes - 16);
        if (five) q0 = _mm256_or_si256(q0, fifth_bits(sq_u32(x0 + bytes - 20)));
        __m256i p0 = dot_u8i8(q0, _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b)));
        float d0 = half_avx2(x0);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
        summ += (has_min ? half_avx2(x0 + 2) : offset * d0) * s[b];
    }
    return hsum_avx2(_mm256_add_ps(acc0, acc1)) + summ;
}
SQ_AVX2 static float dot_q4_0_avx2(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_avx2(nb, w, a, 0, 0); }
SQ_AVX2 static float dot_q4_1_avx2(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_avx2(nb, w, a, 0, 1); }
SQ_AVX2 static float dot_q5_0_avx2(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_avx2(nb, w, a, 1, 0); }
SQ_AVX2 static float dot_q5_1_avx2(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_avx2(nb, w, a, 1, 1); }

SQ_AVX2 static float dot_iq4_nl_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sq_iq4_values));
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t b = 0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *x0 = w + 18 * b, *x1 = x0 + 18;
        __m256i v0 = _mm256_shuffle_epi8(book, unpack_nibbles(x0 + 2));
        __m256i v1 = _mm256_shuffle_epi8(book, unpack_nibbles(x1 + 2));
        __m256i y0 = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b));
        __m256i y1 = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b + 32));
        __m256i p0 = dot_u8i8(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(y0, v0));
        __m256i p1 = dot_u8i8(_mm256_sign_epi8(v1, v1), _mm256_sign_epi8(y1, v1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(x0) * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(x1) * a->d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        const uint8_t *x0 = w + 18 * b;
        __m256i v0 = _mm256_shuffle_epi8(book, unpack_nibbles(x0 + 2));
        __m256i y0 = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b));
        __m256i p0 = dot_u8i8(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(y0, v0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_avx2(x0) * a->d[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_avx2(_mm256_add_ps(acc0, acc1));
}

void sq_register_avx2(sq_dot_fn t[SQ_TYPE_LIMIT]) {
    t[SQ_Q8_0] = dot_q8_0_avx2;
    t[SQ_Q4_0] = dot_q4_0_avx2;
    t[SQ_Q4_1] = dot_q4_1_avx2;
    t[SQ_Q5_0] = dot_q5_0_avx2;
    t[SQ_Q5_1] = dot_q5_1_avx2;
    t[SQ_IQ4_NL] = dot_iq4_nl_avx2;
}

#else
void sq_register_avx2(sq_dot_fn t[SQ_TYPE_LIMIT]) { (void)t; }
#endif
