// Private to CKernels: shared by the quantized dot-product kernels (not part of the
// module's public header).
#ifndef SWIFTQUANT_QDOT_INTERNAL_H
#define SWIFTQUANT_QDOT_INTERNAL_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "CKernels.h"

// GGML type ids of the weight formats with a kernel (the values GGUF stores).
enum {
    SQ_Q4_0 = 2, SQ_Q4_1 = 3, SQ_Q5_0 = 6, SQ_Q5_1 = 7, SQ_Q8_0 = 8,
    SQ_Q2_K = 10, SQ_Q3_K = 11, SQ_Q4_K = 12, SQ_Q5_K = 13, SQ_Q6_K = 14,
    SQ_IQ4_NL = 20, SQ_IQ4_XS = 23,
    SQ_TYPE_LIMIT = 40,
};

// Kernel levels, as `sq_cpu_level` numbers them.
enum { SQ_LEVEL_SCALAR = 0, SQ_LEVEL_AVX2 = 1, SQ_LEVEL_AVX512 = 2, SQ_LEVEL_NEON = 3, SQ_LEVEL_COUNT = 4 };

// A quantized activation row split into its parts (see CKernels.h for the byte layout).
// 32-wide format: `d` holds (d, s) pairs, d[2b] and d[2b + 1]; `aux` is unused.
// 256-wide format: `d` holds one scale per block; `aux` is `bsums`, 16 int16 per block.
typedef struct {
    const int8_t *qs;
    const float *d;
    const void *aux;
} sq_act;

// True for the 32-wide kinds whose activations are stored in pairs of blocks.
static inline int sq_paired(uint32_t type) {
    return type == SQ_Q4_0 || type == SQ_Q4_1 || type == SQ_Q5_0 || type == SQ_Q5_1 || type == SQ_IQ4_NL;
}

// Where the 16 activation quants of half `half` (0: values 0…15, 1: 16…31) of block `b`
// of `nb` start in the paired layout (see CKernels.h).
static inline size_t sq_paired_offset(size_t nb, size_t b, int half) {
    if ((b | 1) < nb) return 64 * (b / 2) + 32 * (size_t)half + 16 * (b % 2);
    return 32 * b + 16 * (size_t)half;  // an odd last block, in order
}
static inline const int8_t *sq_paired_half(const int8_t *qs, size_t nb, size_t b, int half) {
    return qs + sq_paired_offset(nb, b, half);
}

// Dot product of `nb` consecutive weight blocks at `w` with the activation row.
typedef float (*sq_dot_fn)(size_t nb, const uint8_t *w, const sq_act *a);

// Most activation rows one multi-row kernel call takes.
#define SQ_MAX_ROWS 8

// Dot products of one weight row with `na` (1…SQ_MAX_ROWS) activation rows `a[0..<na]`,
// into out[0..<na]: the weights are unpacked once for all of them.
typedef void (*sq_dot_rows_fn)(size_t nb, const uint8_t *w, const sq_act *a, int na, float *out);

// Dot products of four weight rows, at `w` and every `stride` bytes after it, with one
// activation row, into out[0..<4]: the generation path's kernel where a level has one.
typedef void (*sq_dot4_fn)(size_t nb, const uint8_t *w, size_t stride, const sq_act *a, float *out);

// How far ahead generation reads weights it will need: touching the bytes this far past
// the ones being read keeps enough misses in flight (see qdot.c).
#define SQ_PF_BYTES 8192

// Groups of `group_bytes` to look ahead so that at least SQ_PF_BYTES lie in between.
static inline size_t sq_pf_groups(size_t group_bytes) { return (SQ_PF_BYTES + group_bytes - 1) / group_bytes; }

// IEEE binary16 → binary32, exact (portable; the SIMD files use their own instructions).
static inline float sq_half(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    if (exp == 0) {
        float f = (float)man * 5.9604644775390625e-8f;  // subnormal: man × 2^-24, exact
        memcpy(&bits, &f, 4);
        bits |= sign;
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// Little-endian field reads at any alignment.
static inline uint16_t sq_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t sq_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline float sq_f16(const uint8_t *p) { return sq_half(sq_u16(p)); }

// The IQ4 codebook (ggml's kvalues_iq4nl).
extern const int8_t sq_iq4_values[16];

// Scale j and min j (each 0…63) of the 12-byte field Q4_K and Q5_K share.
static inline void sq_scale_min_k4(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// The sixteen signed scales (−32…31) of a Q3_K block's 12-byte field.
static inline void sq_q3k_scales(const uint8_t *s, int8_t out[16]) {
    for (int k = 0; k < 16; k++) {
        int low = k < 8 ? (s[k] & 0x0F) : (s[k - 8] >> 4);
        int high = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
        out[k] = (int8_t)((low | (high << 4)) - 32);
    }
}

// The eight signed scales (−32…31) of an IQ4_XS block.
static inline void sq_iq4xs_scales(const uint8_t *x, int out[8]) {
    uint16_t h = sq_u16(x + 2);
    for (int g = 0; g < 8; g++) {
        int low = (x[4 + g / 2] >> (4 * (g % 2))) & 0x0F;
        int high = (h >> (2 * g)) & 3;
        out[g] = (low | (high << 4)) - 32;
    }
}

// Kernel tables, one per level; a NULL entry means "no kernel at this level".
void sq_register_scalar(sq_dot_fn table[SQ_TYPE_LIMIT]);
void sq_register_avx2(sq_dot_fn table[SQ_TYPE_LIMIT], sq_dot_rows_fn rows[SQ_TYPE_LIMIT]);
void sq_register_avx2_kquants(sq_dot_fn table[SQ_TYPE_LIMIT]);
// Four-row generation kernels of the AVX2 level (qdot_avx2.c).
void sq_register_avx2_4(sq_dot4_fn table[SQ_TYPE_LIMIT]);
// The k-quant ones (qdot_avx2_kquants.c), which `sq_register_avx2_4` adds.
void sq_register_avx2_kquants_4(sq_dot4_fn table[SQ_TYPE_LIMIT]);
void sq_register_avx512(sq_dot_fn table[SQ_TYPE_LIMIT], sq_dot_rows_fn rows[SQ_TYPE_LIMIT]);
// Overrides the AVX-512 level's single-row kernels of the 32-wide kinds (qdot_avx512_gemv.c).
void sq_register_avx512_gemv(sq_dot_fn table[SQ_TYPE_LIMIT]);
void sq_register_neon(sq_dot_fn table[SQ_TYPE_LIMIT]);

#endif
