// Private to CKernels: x86 helpers shared by the AVX2 and AVX-512 kernel files.
#ifndef SWIFTQUANT_QDOT_X86_H
#define SWIFTQUANT_QDOT_X86_H
#include <immintrin.h>
#include "qdot_internal.h"

#define SQ_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SQ_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

// One f16 field widened to lane 0 (movd + vcvtph2ps: no dependency on an old register).
SQ_AVX2 static inline __m128 sq_half_ps(const uint8_t *p) {
    return _mm_cvtph_ps(_mm_cvtsi32_si128(sq_u16(p)));
}
SQ_AVX2 static inline float sq_half_x86(const uint8_t *p) { return _mm_cvtss_f32(sq_half_ps(p)); }

// Two consecutive f32 in lanes 0 and 1.
SQ_AVX2 static inline __m128 sq_load2_ps(const float *p) {
    return _mm_castpd_ps(_mm_load_sd((const double *)p));
}

SQ_AVX2 static inline float sq_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The 16 bytes of nibbles as 32 bytes: low nibbles (weights 0…15) then high (16…31).
SQ_AVX2 static inline __m256i sq_nibbles_avx2(const uint8_t *p) {
    __m128i q = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

// Bit j of `bits` as 0x10 (set) or 0 in byte j.
SQ_AVX2 static inline __m256i sq_fifth_bits_avx2(uint32_t bits) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i select = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, select), select);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

// The IQ4 codebook in both 128-bit lanes, for `vpshufb`.
SQ_AVX2 static inline __m256i sq_iq4_book_avx2(void) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sq_iq4_values));
}

// Bytes of a legacy block, and whether its kind has a minimum/offset term.
static inline size_t sq_legacy_bytes(int kind) {
    switch (kind) {
    case SQ_Q8_0: return 34;
    case SQ_Q4_1: return 20;
    case SQ_Q5_0: return 22;
    case SQ_Q5_1: return 24;
    default: return 18;  // Q4_0, IQ4_NL
    }
}
static inline int sq_has_min(int kind) { return kind == SQ_Q4_0 || kind == SQ_Q4_1 || kind == SQ_Q5_0 || kind == SQ_Q5_1; }

// [d, m, 0, 0] of a legacy block: the stored minimum for Q4_1/Q5_1, the offset as a
// minimum (−8·d, −16·d) for Q4_0/Q5_0, 0 for the symmetric kinds.
SQ_AVX2 static inline __m128 sq_scale_min_x86(int kind, const uint8_t *x) {
    if (kind == SQ_Q4_1 || kind == SQ_Q5_1) return _mm_cvtph_ps(_mm_cvtsi32_si128((int)sq_u32(x)));
    __m128 d = sq_half_ps(x);
    if (kind == SQ_Q4_0) return _mm_mul_ps(_mm_shuffle_ps(d, d, 0), _mm_setr_ps(1, -8, 0, 0));
    if (kind == SQ_Q5_0) return _mm_mul_ps(_mm_shuffle_ps(d, d, 0), _mm_setr_ps(1, -16, 0, 0));
    return d;
}

#endif
