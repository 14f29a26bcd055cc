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
