// AVX2 kernels for the 256-wide kinds (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS).
//
// Within a super-block each run of 32 quants is unpacked to bytes and multiplied with
// `maddubs`; the i16 pair sums are then weighted by the group scales with `madd`, so one
// i32 vector collects Σ scale · Σ q·a for the whole block (at most 256·63·127·128 < 2³¹).
// Offsets (Q3_K's −4, Q6_K's −32) and minimums use the activation's per-16 sums.
#include "qdot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "qdot_x86.h"

// i16 vector: `lo` in the first eight lanes (bytes 0…15 of a run), `hi` in the last eight.
SQ_AVX2 static inline __m256i two_scales(int lo, int hi) {
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

// Bits `shift`…`shift + width − 1` of every byte (shift ≤ 7), in the low bits.
SQ_AVX2 static inline __m256i bits_k(__m256i v, int shift, int mask) {
    return _mm256_and_si256(_mm256_srli_epi16(v, shift), _mm256_set1_epi8((char)mask));
}

// Subtracts `c` from lane 0 (the block's integer correction).
SQ_AVX2 static inline __m256i sub_lane0(__m256i v, int32_t c) {
    return _mm256_sub_epi32(v, _mm256_setr_epi32(c, 0, 0, 0, 0, 0, 0, 0));
}

SQ_AVX2 static float dot_q2_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    const int16_t *bsums = (const int16_t *)a->aux;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 84 * b;
        const int8_t *y = a->qs + 256 * b;
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x + 16 + 32 * h));
            for (int s = 0; s < 4; s++) {
                int g = 8 * h + 2 * s;
                __m256i p = _mm256_maddubs_epi16(bits_k(q, 2 * s, 3),
                                                 _mm256_loadu_si256((const __m256i *)(y + 128 * h + 32 * s)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, two_scales(x[g] & 0x0F, x[g + 1] & 0x0F)));
            }
        }
        int32_t msum = 0;
        for (int g = 0; g < 16; g++) msum += (x[g] >> 4) * bsums[16 * b + g];
        float da = a->d[b];
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x + 80) * da), _mm256_cvtepi32_ps(isum), acc);
        summ -= (sq_half_x86(x + 82) * da) * (float)msum;
    }
    return sq_hsum256(acc) + summ;
}

SQ_AVX2 static float dot_q3_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    const int16_t *bsums = (const int16_t *)a->aux;
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 110 * b;
        const int8_t *y = a->qs + 256 * b;
        int8_t sc[16];
        sq_q3k_scales(x + 96, sc);
        __m256i hm = _mm256_loadu_si256((const __m256i *)x), isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x + 32 + 32 * h));
            for (int s = 0; s < 4; s++) {
                int g = 8 * h + 2 * s;
                __m256i v = _mm256_or_si256(bits_k(q, 2 * s, 3), _mm256_slli_epi16(bits_k(hm, 4 * h + s, 1), 2));
                __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)(y + 128 * h + 32 * s)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, two_scales(sc[g], sc[g + 1])));
            }
        }
        int32_t corr = 0;
        for (int g = 0; g < 16; g++) corr += sc[g] * bsums[16 * b + g];
        isum = sub_lane0(isum, 4 * corr);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x + 108) * a->d[b]), _mm256_cvtepi32_ps(isum), acc);
    }
    return sq_hsum256(acc);
}

SQ_AVX2 static inline __attribute__((always_inline)) float dot_q45_k_avx2(size_t nb, const uint8_t *w, const sq_act *a, int five) {
    const int16_t *bsums = (const int16_t *)a->aux;
    const size_t bytes = five ? 176 : 144;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + bytes * b, *qs = x + (five ? 48 : 16);
        const int8_t *y = a->qs + 256 * b;
        const int16_t *bs = bsums + 16 * b;
        int sc[8], m[8];
        int32_t msum = 0;
        for (int g = 0; g < 8; g++) {
            sq_scale_min_k4(x + 4, g, &sc[g], &m[g]);
            msum += m[g] * (bs[2 * g] + bs[2 * g + 1]);
        }
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(x + 16)) : _mm256_setzero_si256();
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = bits_k(q, 0, 0x0F), hi = bits_k(q, 4, 0x0F);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(bits_k(qh, 2 * c, 1), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(bits_k(qh, 2 * c + 1, 1), 4));
            }
            __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y + 64 * c)));
            __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y + 64 * c + 32)));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p0, _mm256_set1_epi16((short)sc[2 * c])));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p1, _mm256_set1_epi16((short)sc[2 * c + 1])));
        }
        float da = a->d[b];
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x) * da), _mm256_cvtepi32_ps(isum), acc);
        summ -= (sq_half_x86(x + 2) * da) * (float)msum;
    }
    return sq_hsum256(acc) + summ;
}
SQ_AVX2 static float dot_q4_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_k_avx2(nb, w, a, 0); }
SQ_AVX2 static float dot_q5_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_k_avx2(nb, w, a, 1); }

SQ_AVX2 static float dot_q6_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    const int16_t *bsums = (const int16_t *)a->aux;
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 210 * b;
        const int8_t *y = a->qs + 256 * b, *sc = (const int8_t *)(x + 192);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i ql[2] = { _mm256_loadu_si256((const __m256i *)(x + 64 * h)),
                              _mm256_loadu_si256((const __m256i *)(x + 64 * h + 32)) };
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x + 128 + 32 * h));
            for (int s = 0; s < 4; s++) {
                int g = 8 * h + 2 * s;
                __m256i v = _mm256_or_si256(bits_k(ql[s % 2], 4 * (s / 2), 0x0F),
                                            _mm256_slli_epi16(bits_k(qh, 2 * s, 3), 4));
                __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)(y + 128 * h + 32 * s)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, two_scales(sc[g], sc[g + 1])));
            }
        }
        int32_t corr = 0;
        for (int g = 0; g < 16; g++) corr += sc[g] * bsums[16 * b + g];
        isum = sub_lane0(isum, 32 * corr);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x + 208) * a->d[b]), _mm256_cvtepi32_ps(isum), acc);
    }
    return sq_hsum256(acc);
}

SQ_AVX2 static float dot_iq4_xs_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sq_iq4_values));
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 136 * b;
        const int8_t *y = a->qs + 256 * b;
        int sc[8];
        sq_iq4xs_scales(x, sc);
        __m256i isum = _mm256_setzero_si256();
        for (int g = 0; g < 8; g++) {
            __m128i q = _mm_loadu_si128((const __m128i *)(x + 8 + 16 * g));
            __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low4);
            __m256i v = _mm256_shuffle_epi8(book, idx);
            __m256i yg = _mm256_loadu_si256((const __m256i *)(y + 32 * g));
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(yg, v));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_set1_epi16((short)sc[g])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x) * a->d[b]), _mm256_cvtepi32_ps(isum), acc);
    }
    return sq_hsum256(acc);
}

void sq_register_avx2_kquants(sq_dot_fn t[SQ_TYPE_LIMIT]) {
    t[SQ_Q2_K] = dot_q2_k_avx2;
    t[SQ_Q3_K] = dot_q3_k_avx2;
    t[SQ_Q4_K] = dot_q4_k_avx2;
    t[SQ_Q5_K] = dot_q5_k_avx2;
    t[SQ_Q6_K] = dot_q6_k_avx2;
    t[SQ_IQ4_XS] = dot_iq4_xs_avx2;
}

#else
void sq_register_avx2_kquants(sq_dot_fn t[SQ_TYPE_LIMIT]) { (void)t; }
#endif
