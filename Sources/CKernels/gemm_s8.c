// int8 × int8 matrix products: weight packing, activation quantization, the scalar
// reference kernel and the runtime choice of level (API and layouts in CKernels_s8.h).
#include <math.h>
#include <pthread.h>
#include "CKernels.h"
#include "gemm_s8_internal.h"

// The epilogue must round as the SIMD levels do: product, product, sum, never fused.
#pragma STDC FP_CONTRACT OFF

size_t sq_s8_packed_bytes(size_t n, size_t k) {
    size_t panels = (n + SQ_S8_PANEL - 1) / SQ_S8_PANEL, groups = (k + 3) / 4;
    return SQ_S8_GROUP * groups * panels + 3 * 64 * panels;
}

void sq_s8_pack(const int8_t *w, size_t ldw, size_t n, size_t k, const float *scales, const float *bias,
                void *packed) {
    memset(packed, 0, sq_s8_packed_bytes(n, k));
    sq_s8_packed v = sq_s8_view(packed, n, k);
    uint8_t *panels = (uint8_t *)packed;
    int32_t *wsum = (int32_t *)v.wsum;
    float *scale = (float *)v.scale, *b = (float *)v.bias;
    for (size_t j = 0; j < n; j++) {
        uint8_t *panel = panels + (j / SQ_S8_PANEL) * v.panel_bytes + 4 * (j % SQ_S8_PANEL);
        const int8_t *row = w + j * ldw;
        int32_t sum = 0;
        for (size_t i = 0; i < k; i++) {
            panel[SQ_S8_GROUP * (i / 4) + i % 4] = (uint8_t)row[i];
            sum += row[i];
        }
        wsum[j] = sum;
        scale[j] = scales[j];
        b[j] = bias ? bias[j] : 0.0f;
    }
}

// Where W[j, i] sits in the packed bytes.
static inline size_t packed_offset(const sq_s8_packed *v, size_t j, size_t i) {
    return (j / SQ_S8_PANEL) * v->panel_bytes + SQ_S8_GROUP * (i / 4) + 4 * (j % SQ_S8_PANEL) + i % 4;
}

void sq_s8_unpack_row(const void *packed, size_t n, size_t k, size_t j, int8_t *out) {
    sq_s8_packed v = sq_s8_view(packed, n, k);
    for (size_t i = 0; i < k; i++) out[i] = (int8_t)v.panels[packed_offset(&v, j, i)];
}

static void quantize_scalar(const float *x, size_t ldx, size_t m, size_t k, float scale, int8_t *q, size_t ldq,
                            float *scales) {
    sq_s8_quantize_impl(x, ldx, m, k, scale, q, ldq, scales);
}

// The reference: one exact int32 sum per output, then the shared f32 epilogue.
void sq_s8_gemm_scalar(const int8_t *a, size_t lda, const float *sa, size_t m, const sq_s8_packed *w, size_t n,
                       size_t p0, size_t p1, float *y, size_t ldy) {
    for (size_t p = p0; p < p1; p++) {
        const int8_t *panel = (const int8_t *)(w->panels + p * w->panel_bytes);
        for (size_t c = 0; c < SQ_S8_PANEL && SQ_S8_PANEL * p + c < n; c++) {
            size_t j = SQ_S8_PANEL * p + c;
            for (size_t i = 0; i < m; i++) {
                const int8_t *row = a + i * lda;
                int32_t acc = 0;
                for (size_t g = 0; g < w->full_groups; g++)
                    for (int t = 0; t < 4; t++) acc += (int32_t)row[4 * g + t] * panel[SQ_S8_GROUP * g + 4 * c + t];
                for (int t = 0; t < w->tail; t++)
                    acc += (int32_t)row[4 * w->full_groups + t] * panel[SQ_S8_GROUP * w->full_groups + 4 * c + t];
                float s = sa[i] * w->scale[j];
                y[i * ldy + j] = (float)acc * s + w->bias[j];
            }
        }
    }
}

static sq_s8_gemm_fn kernels[SQ_S8_LEVELS];
static sq_s8_quantize_fn quantizers[SQ_S8_LEVELS];
static int best_level;
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

static void init_kernels(void) {
    int cpu = sq_cpu_level();
    kernels[SQ_S8_SCALAR] = sq_s8_gemm_scalar;
    quantizers[SQ_S8_SCALAR] = quantize_scalar;
    if (cpu == 1 || cpu == 2) {
        kernels[SQ_S8_AVX2] = sq_s8_kernel_avx2();
        quantizers[SQ_S8_AVX2] = sq_s8_quantizer_avx2();
    }
    if (cpu == 2) {
        kernels[SQ_S8_AVX512] = sq_s8_kernel_avx512();
        quantizers[SQ_S8_AVX512] = sq_s8_quantizer_avx512();
    }
    if (cpu == 3) {  // the baseline build already vectorises the quantizer with NEON
        kernels[SQ_S8_NEON] = sq_s8_kernel_neon();
        quantizers[SQ_S8_NEON] = quantize_scalar;
        if (sq_s8_has_dotprod()) {
            kernels[SQ_S8_NEON_DOT] = sq_s8_kernel_neon_dot();
            quantizers[SQ_S8_NEON_DOT] = quantize_scalar;
        }
    }
    for (int l = 0; l < SQ_S8_LEVELS; l++)
        if (kernels[l]) best_level = l;
}

int sq_s8_level(void) {
    pthread_once(&kernels_once, init_kernels);
    return best_level;
}

int sq_s8_gemm_level(int level, const int8_t *a, size_t lda, const float *sa, size_t m, const void *packed,
                     size_t n, size_t k, size_t j0, size_t j1, float *y, size_t ldy) {
    pthread_once(&kernels_once, init_kernels);
    if (level < 0 || level >= SQ_S8_LEVELS || !kernels[level]) return -1;
    if (j0 % SQ_S8_PANEL != 0 || j0 > j1 || j1 > n || (j1 % SQ_S8_PANEL != 0 && j1 != n) || k > 65536) return -1;
    if (m == 0 || j0 == j1) return level;
    sq_s8_packed w = sq_s8_view(packed, n, k);
    kernels[level](a, lda, sa, m, &w, n, j0 / SQ_S8_PANEL, (j1 + SQ_S8_PANEL - 1) / SQ_S8_PANEL, y, ldy);
    return level;
}

void sq_s8_gemm(const int8_t *a, size_t lda, const float *sa, size_t m, const void *packed, size_t n, size_t k,
                size_t j0, size_t j1, float *y, size_t ldy) {
    sq_s8_gemm_level(sq_s8_level(), a, lda, sa, m, packed, n, k, j0, j1, y, ldy);
}

int sq_s8_quantize_rows_level(int level, const float *x, size_t ldx, size_t m, size_t k, float scale, int8_t *q,
                              size_t ldq, float *scales) {
    pthread_once(&kernels_once, init_kernels);
    if (level < 0 || level >= SQ_S8_LEVELS || !quantizers[level] || scale != scale) return -1;  // NaN
    if (scale < 0 && !scales) return -1;
    quantizers[level](x, ldx, m, k, scale < 0 ? -1.0f : scale, q, ldq, scales);
    return level;
}

void sq_s8_quantize_rows(const float *x, size_t ldx, size_t m, size_t k, int8_t *q, size_t ldq, float *scales) {
    sq_s8_quantize_rows_level(sq_s8_level(), x, ldx, m, k, -1.0f, q, ldq, scales);
}

void sq_s8_quantize_rows_static(const float *x, size_t ldx, size_t m, size_t k, float scale, int8_t *q,
                                size_t ldq) {
    sq_s8_quantize_rows_level(sq_s8_level(), x, ldx, m, k, scale, q, ldq, NULL);
}
