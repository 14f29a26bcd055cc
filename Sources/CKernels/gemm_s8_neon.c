// NEON int8 GEMMs (arm64), signed × signed directly (no offset). A panel group is four
// q registers, each 4 channels × 4 k, the operand shape of `sdot`.
//
// - With the dot-product extension (ARMv8.2 `sdot`, chosen at run time): `vdotq_laneq_s32`
//   adds four products per lane against one 4-byte group of a 16-byte activation load.
//   Tiles of up to 6 rows × 1 panel (24 accumulators of 32).
// - Baseline ARMv8: the activation group repeated across the register, `vmull_s8` gives
//   int16 products (|a·w| ≤ 127² fits), `vpadalq_s16` adds pairs into int32 lanes (two
//   per channel), and one pairwise add per channel finishes. Tiles of 2 rows × 1 panel.
#include "gemm_s8_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#pragma STDC FP_CONTRACT OFF

#define SQ_AI __attribute__((always_inline))
#define SQ_DOT __attribute__((target("dotprod")))

int sq_s8_has_dotprod(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & (1UL << 20)) != 0;  // HWCAP_ASIMDDP
#elif defined(__APPLE__)
    int v = 0;
    size_t size = sizeof v;
    return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &size, NULL, 0) == 0 && v;
#else
    return 0;
#endif
}

// Channels j…j+15 of one output row (`row` points at channel 0) from four int32x4 sums;
// channels ≥ n are not written.
static inline SQ_AI void store16(const int32x4_t *acc, float sa, const sq_s8_packed *w, size_t n, size_t j,
                                 float *row) {
    float *dst = row + j;
    for (int q = 0; q < 4; q++) {
        size_t c = j + 4 * (size_t)q;
        if (c >= n) return;
        float32x4_t f = vcvtq_f32_s32(acc[q]);
        float32x4_t s = vmulq_f32(vdupq_n_f32(sa), vld1q_f32(w->scale + c));
        float32x4_t out = vaddq_f32(vmulq_f32(f, s), vld1q_f32(w->bias + c));
        if (n - c >= 4) {
            vst1q_f32(dst + 4 * q, out);
        } else {
            float tmp[4];
            vst1q_f32(tmp, out);
            for (size_t t = 0; t < n - c; t++) dst[4 * q + t] = tmp[t];
        }
    }
}

// MARK: sdot

#define MR_DOT 6

// Rows 0..<mr (≤ 6, a constant after inlining) of panel p.
SQ_DOT static inline SQ_AI void tile_dot(int mr, const int8_t *a, size_t lda, const float *sa,
                                         const sq_s8_packed *w, size_t n, size_t p, float *y, size_t ldy) {
    int32x4_t acc[MR_DOT][4];
    for (int i = 0; i < mr; i++)
        for (int q = 0; q < 4; q++) acc[i][q] = vdupq_n_s32(0);
    const int8_t *wp = (const int8_t *)(w->panels + p * w->panel_bytes);
    size_t g = 0;
    for (; g + 4 <= w->full_groups; g += 4) {  // four groups per 16-byte activation load
        int8x16_t av[MR_DOT];
        for (int i = 0; i < mr; i++) av[i] = vld1q_s8(a + (size_t)i * lda + 4 * g);
#define SQ_DOT_LANE(l)                                                                       \
        {                                                                                    \
            const int8_t *grp = wp + SQ_S8_GROUP * (g + l);                                  \
            int8x16_t w0 = vld1q_s8(grp), w1 = vld1q_s8(grp + 16), w2 = vld1q_s8(grp + 32),  \
                      w3 = vld1q_s8(grp + 48);                                               \
            for (int i = 0; i < mr; i++) {                                                   \
                acc[i][0] = vdotq_laneq_s32(acc[i][0], w0, av[i], l);                        \
                acc[i][1] = vdotq_laneq_s32(acc[i][1], w1, av[i], l);                        \
                acc[i][2] = vdotq_laneq_s32(acc[i][2], w2, av[i], l);                        \
                acc[i][3] = vdotq_laneq_s32(acc[i][3], w3, av[i], l);                        \
            }                                                                                \
        }
        SQ_DOT_LANE(0)
        SQ_DOT_LANE(1)
        SQ_DOT_LANE(2)
        SQ_DOT_LANE(3)
#undef SQ_DOT_LANE
    }
    size_t groups = w->full_groups + (w->tail ? 1 : 0);
    for (; g < groups; g++) {  // the remaining groups one at a time
        int len = g < w->full_groups ? 4 : w->tail;
        const int8_t *grp = wp + SQ_S8_GROUP * g;
        for (int i = 0; i < mr; i++) {
            int8x16_t av = vreinterpretq_s8_s32(vdupq_n_s32(sq_s8_group(a + (size_t)i * lda, g, len)));
            for (int q = 0; q < 4; q++) acc[i][q] = vdotq_s32(acc[i][q], vld1q_s8(grp + 16 * q), av);
        }
    }
    for (int i = 0; i < mr; i++) store16(acc[i], sa[i], w, n, SQ_S8_PANEL * p, y + (size_t)i * ldy);
}

SQ_DOT static void gemm_neon_dot(const int8_t *a, size_t lda, const float *sa, size_t m, const sq_s8_packed *w,
                                 size_t n, size_t p0, size_t p1, float *y, size_t ldy) {
    for (size_t p = p0; p < p1; p++) {
        size_t i = 0;
        for (; i + MR_DOT <= m; i += MR_DOT) tile_dot(MR_DOT, a + i * lda, lda, sa + i, w, n, p, y + i * ldy, ldy);
        const int8_t *ar = a + i * lda;
        float *yr = y + i * ldy;
        switch (m - i) {
        case 5: tile_dot(5, ar, lda, sa + i, w, n, p, yr, ldy); break;
        case 4: tile_dot(4, ar, lda, sa + i, w, n, p, yr, ldy); break;
        case 3: tile_dot(3, ar, lda, sa + i, w, n, p, yr, ldy); break;
        case 2: tile_dot(2, ar, lda, sa + i, w, n, p, yr, ldy); break;
        case 1: tile_dot(1, ar, lda, sa + i, w, n, p, yr, ldy); break;
        default: break;
        }
    }
}

// MARK: baseline

#define MR_BASE 2

// Rows 0..<mr (≤ 2) of panel p.
static inline SQ_AI void tile_base(int mr, const int8_t *a, size_t lda, const float *sa, const sq_s8_packed *w,
                                   size_t n, size_t p, float *y, size_t ldy) {
    int32x4_t lo[MR_BASE][4], hi[MR_BASE][4];  // per q register: channels 0–1 and 2–3, two lanes each
    for (int i = 0; i < mr; i++)
        for (int q = 0; q < 4; q++) lo[i][q] = hi[i][q] = vdupq_n_s32(0);
    const int8_t *wp = (const int8_t *)(w->panels + p * w->panel_bytes);
    size_t groups = w->full_groups + (w->tail ? 1 : 0);
    for (size_t g = 0; g < groups; g++) {
        int len = g < w->full_groups ? 4 : w->tail;
        const int8_t *grp = wp + SQ_S8_GROUP * g;
        int8x16_t wq[4] = { vld1q_s8(grp), vld1q_s8(grp + 16), vld1q_s8(grp + 32), vld1q_s8(grp + 48) };
        for (int i = 0; i < mr; i++) {
            int8x16_t av = vreinterpretq_s8_s32(vdupq_n_s32(sq_s8_group(a + (size_t)i * lda, g, len)));
            for (int q = 0; q < 4; q++) {
                lo[i][q] = vpadalq_s16(lo[i][q], vmull_s8(vget_low_s8(wq[q]), vget_low_s8(av)));
                hi[i][q] = vpadalq_s16(hi[i][q], vmull_high_s8(wq[q], av));
            }
        }
    }
    for (int i = 0; i < mr; i++) {
        int32x4_t acc[4];
        for (int q = 0; q < 4; q++) acc[q] = vpaddq_s32(lo[i][q], hi[i][q]);
        store16(acc, sa[i], w, n, SQ_S8_PANEL * p, y + (size_t)i * ldy);
    }
}

static void gemm_neon(const int8_t *a, size_t lda, const float *sa, size_t m, const sq_s8_packed *w, size_t n,
                      size_t p0, size_t p1, float *y, size_t ldy) {
    for (size_t p = p0; p < p1; p++) {
        size_t i = 0;
        for (; i + MR_BASE <= m; i += MR_BASE) tile_base(MR_BASE, a + i * lda, lda, sa + i, w, n, p, y + i * ldy, ldy);
        if (i < m) tile_base(1, a + i * lda, lda, sa + i, w, n, p, y + i * ldy, ldy);
    }
}

sq_s8_gemm_fn sq_s8_kernel_neon(void) { return gemm_neon; }
sq_s8_gemm_fn sq_s8_kernel_neon_dot(void) { return gemm_neon_dot; }

#else
int sq_s8_has_dotprod(void) { return 0; }
sq_s8_gemm_fn sq_s8_kernel_neon(void) { return NULL; }
sq_s8_gemm_fn sq_s8_kernel_neon_dot(void) { return NULL; }
#endif
