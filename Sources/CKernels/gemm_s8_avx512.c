// AVX-512 VNNI int8 GEMM. `vpdpbusd` multiplies unsigned × signed bytes and adds groups of
// four into int32 without saturating, so the activations are offset to unsigned
// (a + 128, an xor with 0x80) and the packed per-channel sums remove the offset:
//     Σ (a + 128) · w = Σ a · w + 128 · Σ w.
// One register is a panel group (16 channels × 4 k); the activation group of a row is
// broadcast to all 16 channels. A tile is up to 8 rows × 3 panels (24 accumulators);
// each weight register is loaded once per 8 rows, each broadcast serves 3 panels.
// Panels go in the outer loop so a 48-channel slice of W (48·k bytes) stays in L1/L2
// while the rows stream past.
#include "gemm_s8_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#pragma STDC FP_CONTRACT OFF

#define SQ_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define SQ_AI __attribute__((always_inline))
#define MR 8
#define NP 3

// Rows 0..<mr (≤ 8) of panels p..<p+np (≤ 3); mr and np are constants after inlining.
SQ_VNNI static inline SQ_AI void tile(int mr, int np, const int8_t *a, size_t lda, const float *sa,
                                      const sq_s8_packed *w, size_t n, size_t p, float *y, size_t ldy) {
    __m512i acc[MR][NP];
    for (int i = 0; i < mr; i++)
        for (int q = 0; q < np; q++) acc[i][q] = _mm512_setzero_si512();
    const uint8_t *wp = w->panels + p * w->panel_bytes;
    const size_t pb = w->panel_bytes;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const int8_t *rows[MR];
    for (int i = 0; i < mr; i++) rows[i] = a + (size_t)i * lda;
    for (size_t g = 0; g < w->full_groups; g++) {
        __m512i wv[NP];
        for (int q = 0; q < np; q++) wv[q] = _mm512_loadu_si512(wp + q * pb + SQ_S8_GROUP * g);
        for (int i = 0; i < mr; i++) {
            int32_t v;
            memcpy(&v, rows[i] + 4 * g, 4);
            __m512i av = _mm512_xor_si512(_mm512_set1_epi32(v), flip);
            for (int q = 0; q < np; q++) acc[i][q] = _mm512_dpbusd_epi32(acc[i][q], av, wv[q]);
        }
    }
    if (w->tail) {  // zero-filled activation bytes meet zero weights
        size_t g = w->full_groups;
        __m512i wv[NP];
        for (int q = 0; q < np; q++) wv[q] = _mm512_loadu_si512(wp + q * pb + SQ_S8_GROUP * g);
        for (int i = 0; i < mr; i++) {
            __m512i av = _mm512_xor_si512(_mm512_set1_epi32(sq_s8_group(rows[i], g, w->tail)), flip);
            for (int q = 0; q < np; q++) acc[i][q] = _mm512_dpbusd_epi32(acc[i][q], av, wv[q]);
        }
    }
    for (int q = 0; q < np; q++) {
        size_t j = SQ_S8_PANEL * (p + q);
        __mmask16 mask = n - j >= SQ_S8_PANEL ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512(w->wsum + j), 7);
        __m512 sw = _mm512_loadu_ps(w->scale + j), bias = _mm512_loadu_ps(w->bias + j);
        for (int i = 0; i < mr; i++) {
            __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][q], corr));
            __m512 s = _mm512_mul_ps(_mm512_set1_ps(sa[i]), sw);
            _mm512_mask_storeu_ps(y + (size_t)i * ldy + j, mask, _mm512_add_ps(_mm512_mul_ps(f, s), bias));
        }
    }
}

// One column of tiles: every row block of panels p..<p+np.
#define SQ_TILE_ROWS(np)                                                                                \
    SQ_VNNI static void tiles_##np(const int8_t *a, size_t lda, const float *sa, size_t m,             \
                                   const sq_s8_packed *w, size_t n, size_t p, float *y, size_t ldy) {  \
        size_t i = 0;                                                                                   \
        for (; i + MR <= m; i += MR) tile(MR, np, a + i * lda, lda, sa + i, w, n, p, y + i * ldy, ldy); \
        const int8_t *ar = a + i * lda;                                                                 \
        float *yr = y + i * ldy;                                                                        \
        switch (m - i) {                                                                                \
        case 7: tile(7, np, ar, lda, sa + i, w, n, p, yr, ldy); break;                                  \
        case 6: tile(6, np, ar, lda, sa + i, w, n, p, yr, ldy); break;                                  \
        case 5: tile(5, np, ar, lda, sa + i, w, n, p, yr, ldy); break;                                  \
        case 4: tile(4, np, ar, lda, sa + i, w, n, p, yr, ldy); break;                                  \
        case 3: tile(3, np, ar, lda, sa + i, w, n, p, yr, ldy); break;                                  \
        case 2: tile(2, np, ar, lda, sa + i, w, n, p, yr, ldy); break;                                  \
        case 1: tile(1, np, ar, lda, sa + i, w, n, p, yr, ldy); break;                                  \
        default: break;                                                                                 \
        }                                                                                               \
    }
SQ_TILE_ROWS(1)
SQ_TILE_ROWS(2)
SQ_TILE_ROWS(3)

SQ_VNNI static void gemm_avx512(const int8_t *a, size_t lda, const float *sa, size_t m, const sq_s8_packed *w,
                                size_t n, size_t p0, size_t p1, float *y, size_t ldy) {
    size_t p = p0;
    for (; p + NP <= p1; p += NP) tiles_3(a, lda, sa, m, w, n, p, y, ldy);
    if (p1 - p == 2) tiles_2(a, lda, sa, m, w, n, p, y, ldy);
    else if (p1 - p == 1) tiles_1(a, lda, sa, m, w, n, p, y, ldy);
}

sq_s8_gemm_fn sq_s8_kernel_avx512(void) { return gemm_avx512; }

// The shared quantizer (gemm_s8_internal.h), vectorised for this level.
SQ_VNNI static void quantize_avx512(const float *x, size_t ldx, size_t m, size_t k, float scale, int8_t *q, size_t ldq,
                        float *scales) {
    sq_s8_quantize_impl(x, ldx, m, k, scale, q, ldq, scales);
}

sq_s8_quantize_fn sq_s8_quantizer_avx512(void) { return quantize_avx512; }

#else
sq_s8_gemm_fn sq_s8_kernel_avx512(void) { return NULL; }
sq_s8_quantize_fn sq_s8_quantizer_avx512(void) { return NULL; }
#endif
