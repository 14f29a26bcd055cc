// Private to CKernels: the packed-weight layout and kernel table of the int8 × int8
// matrix products (public API and layout description in include/CKernels_s8.h).
#ifndef SWIFTQUANT_GEMM_S8_INTERNAL_H
#define SWIFTQUANT_GEMM_S8_INTERNAL_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "CKernels_s8.h"

// Output channels per panel, and bytes of one panel group (16 channels × 4 k).
#define SQ_S8_PANEL 16
#define SQ_S8_GROUP 64

// Levels as CKernels_s8.h numbers them.
enum { SQ_S8_SCALAR = 0, SQ_S8_AVX2 = 1, SQ_S8_AVX512 = 2, SQ_S8_NEON = 3, SQ_S8_NEON_DOT = 4, SQ_S8_LEVELS = 5 };

// A packed matrix split into its parts (`sq_s8_view`).
typedef struct {
    const uint8_t *panels;  // panel p at panels + p · panel_bytes
    size_t panel_bytes;     // 64 · groups
    size_t groups;          // ⌈k / 4⌉
    size_t full_groups;     // k / 4 (groups with four real values)
    int tail;               // k % 4: real values in the last group when it is partial
    const int32_t *wsum;    // Σ_k W[j, k], 16 per panel
    const float *scale;     // sw[j]
    const float *bias;      // bias[j] (0 without one)
} sq_s8_packed;

static inline sq_s8_packed sq_s8_view(const void *packed, size_t n, size_t k) {
    size_t panels = (n + SQ_S8_PANEL - 1) / SQ_S8_PANEL, groups = (k + 3) / 4;
    const uint8_t *p = (const uint8_t *)packed;
    const uint8_t *tail = p + SQ_S8_GROUP * groups * panels;
    sq_s8_packed v = { p, SQ_S8_GROUP * groups, groups, k / 4, (int)(k % 4),
                       (const int32_t *)tail, (const float *)(tail + 64 * panels),
                       (const float *)(tail + 128 * panels) };
    return v;
}

// The four activation bytes of group g of a row as one 32-bit word; a partial last group
// (`len` < 4 bytes) is zero-filled, so no byte past the row is read.
static inline int32_t sq_s8_group(const int8_t *row, size_t g, int len) {
    int32_t v = 0;
    memcpy(&v, row + 4 * g, (size_t)len);
    return v;
}

// MARK: Activation quantization
//
// One C source for every level: gemm_s8.c compiles it for the baseline ISA, the x86 level
// files inline it under their target attributes so the loops vectorise wider. Each
// element goes through the same IEEE operations in the same order on every level
// (max is exact in any order), so the levels agree bit for bit.

// max|x| of k floats, through the bit patterns: for non-NaN floats, |x| ordered as an
// integer is ordered as a float, and an integer max reduction vectorises everywhere (a
// float one does not without fast-math). A NaN compares above every number, so a row
// with a NaN gets a NaN scale and NaN outputs.
static inline __attribute__((always_inline)) float sq_s8_absmax(const float *x, size_t k) {
    int32_t m = 0;
    for (size_t i = 0; i < k; i++) {
        int32_t b;
        memcpy(&b, x + i, 4);
        b &= 0x7FFFFFFF;
        m = b > m ? b : m;
    }
    float f;
    memcpy(&f, &m, 4);
    return f;
}

// q[i] = x[i] · inv rounded to nearest-even, clamped to −127…127. The comparisons are
// written as x86's minps/maxps define them (a NaN product becomes 127); clamping first
// keeps |v| < 2²², where adding and subtracting 1.5·2²³ rounds in the current
// (nearest-even) mode without a libm call.
static inline __attribute__((always_inline)) void sq_s8_quantize_row(const float *x, size_t k, float inv, int8_t *q) {
    const float magic = 12582912.0f;
    for (size_t i = 0; i < k; i++) {
        float v = x[i] * inv;
        v = v < 127.0f ? v : 127.0f;
        v = v > -127.0f ? v : -127.0f;
        q[i] = (int8_t)(int32_t)((v + magic) - magic);
    }
}

// Both quantizers (see CKernels_s8.h), for one level: `scale` < 0 asks for dynamic
// per-row scales into `scales`, otherwise every row uses `scale`.
static inline __attribute__((always_inline)) void sq_s8_quantize_impl(const float *x, size_t ldx, size_t m,
                                                                       size_t k, float scale, int8_t *q, size_t ldq,
                                                                       float *scales) {
    for (size_t r = 0; r < m; r++) {
        const float *row = x + r * ldx;
        float inv;
        if (scale < 0) {
            float amax = sq_s8_absmax(row, k);
            scales[r] = amax / 127.0f;
            inv = amax != 0 ? 127.0f / amax : 0.0f;
        } else {
            inv = scale != 0 ? 1.0f / scale : 0.0f;
        }
        sq_s8_quantize_row(row, k, inv, q + r * ldq);
    }
}

typedef void (*sq_s8_quantize_fn)(const float *x, size_t ldx, size_t m, size_t k, float scale, int8_t *q,
                                  size_t ldq, float *scales);
// Each returns its quantizer, or NULL where the architecture is not compiled in.
sq_s8_quantize_fn sq_s8_quantizer_avx2(void);
sq_s8_quantize_fn sq_s8_quantizer_avx512(void);

// Computes rows 0..<m of output channels of panels p0..<p1 (channels ≥ n are not
// written). Each level has one; the driver in gemm_s8.c checks the arguments.
typedef void (*sq_s8_gemm_fn)(const int8_t *a, size_t lda, const float *sa, size_t m, const sq_s8_packed *w,
                              size_t n, size_t p0, size_t p1, float *y, size_t ldy);

void sq_s8_gemm_scalar(const int8_t *a, size_t lda, const float *sa, size_t m, const sq_s8_packed *w, size_t n,
                       size_t p0, size_t p1, float *y, size_t ldy);
// Each returns its kernel, or NULL where the architecture is not compiled in.
sq_s8_gemm_fn sq_s8_kernel_avx2(void);
sq_s8_gemm_fn sq_s8_kernel_avx512(void);
sq_s8_gemm_fn sq_s8_kernel_neon(void);
sq_s8_gemm_fn sq_s8_kernel_neon_dot(void);
// 1 when the running arm64 CPU has the dot-product extension (0 elsewhere).
int sq_s8_has_dotprod(void);

#endif
