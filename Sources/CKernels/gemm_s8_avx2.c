// AVX2 int8 GEMM. `maddubs` multiplies unsigned × signed bytes into int16 pair sums that
// saturate, so the +128 offset of the VNNI kernel would overflow (255·127·2 > 32767).
// Instead the sign moves onto the activation: |w| · sign(a, w) = a · w, and with both in
// −127…127 a pair sum is at most 2·127·127 = 32258, exact. `madd` with ones widens the
// pairs to int32. A tile is up to 4 rows × 1 panel (16 channels, two registers): eight
// accumulators, the panel group, its absolute values and temporaries fill the 16 ymm
// registers. Panels go in the outer loop so a panel of W stays in cache while rows stream.
#include "gemm_s8_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#pragma STDC FP_CONTRACT OFF

#define SQ_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SQ_AI __attribute__((always_inline))
#define MR 4

// Eight int32 sums of a · w over groups of four, for w (and |w|) in one register.
SQ_AVX2 static inline SQ_AI __m256i dot4(__m256i av, __m256i wv, __m256i wabs) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, _mm256_sign_epi8(av, wv)), _mm256_set1_epi16(1));
}

// Output channels j…j+7 of `mr` rows from their accumulators; channels ≥ n are not written.
SQ_AVX2 static inline SQ_AI void store8(int mr, const __m256i *acc, const float *sa, const sq_s8_packed *w,
                                        size_t n, size_t j, float *y, size_t ldy) {
    if (j >= n) return;
    __m256 sw = _mm256_loadu_ps(w->scale + j), bias = _mm256_loadu_ps(w->bias + j);
    size_t valid = n - j;
    for (int i = 0; i < mr; i++) {
        __m256 f = _mm256_cvtepi32_ps(acc[i]);
        __m256 s = _mm256_mul_ps(_mm256_set1_ps(sa[i]), sw);
        __m256 out = _mm256_add_ps(_mm256_mul_ps(f, s), bias);
        float *dst = y + (size_t)i * ldy + j;
        if (valid >= 8) {
            _mm256_storeu_ps(dst, out);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, out);
            for (size_t c = 0; c < valid; c++) dst[c] = tmp[c];
        }
    }
}

// One panel group (g) against `mr` rows whose four activation bytes are `v[i]`.
SQ_AVX2 static inline SQ_AI void step(int mr, const uint8_t *group, const int32_t *v, __m256i *lo, __m256i *hi) {
    __m256i wl = _mm256_loadu_si256((const __m256i *)group);
    __m256i wh = _mm256_loadu_si256((const __m256i *)(group + 32));
    __m256i al = _mm256_abs_epi8(wl), ah = _mm256_abs_epi8(wh);
    for (int i = 0; i < mr; i++) {
        __m256i av = _mm256_set1_epi32(v[i]);
        lo[i] = _mm256_add_epi32(lo[i], dot4(av, wl, al));
        hi[i] = _mm256_add_epi32(hi[i], dot4(av, wh, ah));
    }
}

// Rows 0..<mr (≤ 4, a constant after inlining) of panel p.
SQ_AVX2 static inline SQ_AI void tile(int mr, const int8_t *a, size_t lda, const float *sa, const sq_s8_packed *w,
                                      size_t n, size_t p, float *y, size_t ldy) {
    __m256i lo[MR], hi[MR];  // channels 0–7 and 8–15 of the panel
    for (int i = 0; i < mr; i++) lo[i] = hi[i] = _mm256_setzero_si256();
    const uint8_t *wp = w->panels + p * w->panel_bytes;
    int32_t v[MR];
    for (size_t g = 0; g < w->full_groups; g++) {
        for (int i = 0; i < mr; i++) memcpy(&v[i], a + (size_t)i * lda + 4 * g, 4);
        step(mr, wp + SQ_S8_GROUP * g, v, lo, hi);
    }
    if (w->tail) {  // zero-filled activation bytes meet zero weights
        for (int i = 0; i < mr; i++) v[i] = sq_s8_group(a + (size_t)i * lda, w->full_groups, w->tail);
        step(mr, wp + SQ_S8_GROUP * w->full_groups, v, lo, hi);
    }
    size_t j = SQ_S8_PANEL * p;
    store8(mr, lo, sa, w, n, j, y, ldy);
    store8(mr, hi, sa, w, n, j + 8, y, ldy);
}

SQ_AVX2 static void gemm_avx2(const int8_t *a, size_t lda, const float *sa, size_t m, const sq_s8_packed *w,
                              size_t n, size_t p0, size_t p1, float *y, size_t ldy) {
    for (size_t p = p0; p < p1; p++) {
        size_t i = 0;
        for (; i + MR <= m; i += MR) tile(MR, a + i * lda, lda, sa + i, w, n, p, y + i * ldy, ldy);
        const int8_t *ar = a + i * lda;
        float *yr = y + i * ldy;
        switch (m - i) {
        case 3: tile(3, ar, lda, sa + i, w, n, p, yr, ldy); break;
        case 2: tile(2, ar, lda, sa + i, w, n, p, yr, ldy); break;
        case 1: tile(1, ar, lda, sa + i, w, n, p, yr, ldy); break;
        default: break;
        }
    }
}

sq_s8_gemm_fn sq_s8_kernel_avx2(void) { return gemm_avx2; }

// The shared quantizer (gemm_s8_internal.h), vectorised for this level.
SQ_AVX2 static void quantize_avx2(const float *x, size_t ldx, size_t m, size_t k, float scale, int8_t *q, size_t ldq,
                        float *scales) {
    sq_s8_quantize_impl(x, ldx, m, k, scale, q, ldq, scales);
}

sq_s8_quantize_fn sq_s8_quantizer_avx2(void) { return quantize_avx2; }

#else
sq_s8_gemm_fn sq_s8_kernel_avx2(void) { return NULL; }
sq_s8_quantize_fn sq_s8_quantizer_avx2(void) { return NULL; }
#endif
