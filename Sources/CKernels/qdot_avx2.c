// AVX2 kernels for the 32-wide legacy kinds (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL).
//
// Compiled with per-function target attributes, so the package needs no -march flag;
// `qdot.c` calls them only when `sq_cpu_level()` reports AVX2, FMA and F16C.
//
// The integer core is `maddubs` (u8 × i8 pairs summed to i16) then `madd` with ones
// (pairs of i16 summed to i32). Unsigned weights (4/5-bit q) go in the u8 operand as
// they are; signed ones (Q8_0, IQ4 codebook values) use |w| and sign(a, w), which keeps
// every i16 pair sum within ±128·127·2 < 32768 as long as activations are within ±127.
//
// The multi-row kernels take up to four activation rows per pass: the weights are
// unpacked once and dotted with every row (prompt processing reuses each weight block that many times).
//
// Per block, [d_w, m] (from the f16 fields, one conversion) times the activation's
// [d_a, s] gives [d_w·d_a, m·s] in one multiply: lane 0 scales the block's i32 sums into
// the f32 accumulator, lane 1 accumulates the minimum term in a vector register (a scalar
// chain there, or the merge-insert `_cvtsh_ss` compiles to, would serialise the loop).
#include "qdot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "qdot_x86.h"

// Eight i32 sums of u8 × i8 over groups of four bytes.
SQ_AVX2 static inline __m256i dot_u8i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// A block's weights ready for maddubs: unsigned bytes, and for the signed kinds the
// signed values whose signs move onto the activations.
typedef struct {
    __m256i u, sign;
} block_weights;

SQ_AVX2 static inline __attribute__((always_inline)) block_weights load_block_avx2(int kind, const uint8_t *x) {
    block_weights p;
    p.sign = _mm256_setzero_si256();
    switch (kind) {
    case SQ_Q8_0:
        p.sign = _mm256_loadu_si256((const __m256i *)(x + 2));
        p.u = _mm256_sign_epi8(p.sign, p.sign);
        break;
    case SQ_IQ4_NL:
        p.sign = _mm256_shuffle_epi8(sq_iq4_book_avx2(), sq_nibbles_avx2(x + 2));
        p.u = _mm256_sign_epi8(p.sign, p.sign);
        break;
    case SQ_Q4_0: p.u = sq_nibbles_avx2(x + 2); break;
    case SQ_Q4_1: p.u = sq_nibbles_avx2(x + 4); break;
    case SQ_Q5_0: p.u = _mm256_or_si256(sq_nibbles_avx2(x + 6), sq_fifth_bits_avx2(sq_u32(x + 2))); break;
    default:      p.u = _mm256_or_si256(sq_nibbles_avx2(x + 8), sq_fifth_bits_avx2(sq_u32(x + 4))); break;
    }
    return p;
}

// One block against `na` activation rows, into accumulators `k`…`k + na − 1`.
SQ_AVX2 static inline __attribute__((always_inline)) void step_avx2(
    int kind, int na, size_t b, int k, const uint8_t *w, const sq_act *a, __m256 *acc, __m128 *accm) {
    const uint8_t *x = w + sq_legacy_bytes(kind) * b;
    block_weights q = load_block_avx2(kind, x);
    __m128 wdm = sq_scale_min_x86(kind, x);
    for (int j = 0; j < na; j++) {
        __m256i y = _mm256_loadu_si256((const __m256i *)(a[j].qs + 32 * b));
        if (kind == SQ_Q8_0 || kind == SQ_IQ4_NL) y = _mm256_sign_epi8(y, q.sign);
        __m256i p = dot_u8i8(q.u, y);
        __m128 s = _mm_mul_ps(wdm, sq_load2_ps(a[j].d + 2 * b));  // [d·da, m·s]
        acc[j + k] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s), _mm256_cvtepi32_ps(p), acc[j + k]);
        accm[j + k] = _mm_add_ps(accm[j + k], s);
    }
}

// Dot products of one weight row with `na` (1…4, a constant after inlining) activation
// rows; one generic loop, specialised per kind by inlining.
SQ_AVX2 static inline __attribute__((always_inline)) void dot_legacy_avx2(int kind, int na, size_t nb, const uint8_t *w, const sq_act *a, float *out) {
    // A single row alternates two accumulators between even and odd blocks, so the loop
    // is not bound by the latency of one chain of fused multiply-adds; several rows are
    // independent chains already.
    __m256 acc[SQ_MAX_ROWS + 1];
    __m128 accm[SQ_MAX_ROWS + 1];
    for (int j = 0; j <= na; j++) {
        acc[j] = _mm256_setzero_ps();
        accm[j] = _mm_setzero_ps();
    }
    size_t b = 0;
    if (na == 1) {
        for (; b + 1 < nb; b += 2) {
            step_avx2(kind, 1, b, 0, w, a, acc, accm);
            step_avx2(kind, 1, b + 1, 1, w, a, acc, accm);
        }
        acc[0] = _mm256_add_ps(acc[0], acc[1]);
        accm[0] = _mm_add_ps(accm[0], accm[1]);
    }
    for (; b < nb; b++) step_avx2(kind, na, b, 0, w, a, acc, accm);
    for (int j = 0; j < na; j++) {
        float sum = sq_hsum256(acc[j]);
        out[j] = sq_has_min(kind) ? sum + _mm_cvtss_f32(_mm_movehdup_ps(accm[j])) : sum;
    }
}

// Entry points: the single-row kernel and the multi-row one (four rows at a time), per kind.
#define SQ_AVX2_KERNELS(name, kind)                                                                    \
    SQ_AVX2 static float name##_avx2(size_t nb, const uint8_t *w, const sq_act *a) {                \
        float out;                                                                                     \
        dot_legacy_avx2(kind, 1, nb, w, a, &out);                                                      \
        return out;                                                                                    \
    }                                                                                                  \
    SQ_AVX2 static void name##_avx2_rows(size_t nb, const uint8_t *w, const sq_act *a, int na, float *out) { \
        if (na > 4) { /* 16 ymm registers hold the accumulators of four rows */                   \
            dot_legacy_avx2(kind, 4, nb, w, a, out);                                                   \
            a += 4, out += 4, na -= 4;                                                                 \
        }                                                                                              \
        switch (na) {                                                                                  \
        case 4: dot_legacy_avx2(kind, 4, nb, w, a, out); break;                                       \
        case 3: dot_legacy_avx2(kind, 3, nb, w, a, out); break;                                       \
        case 2: dot_legacy_avx2(kind, 2, nb, w, a, out); break;                                       \
        default: dot_legacy_avx2(kind, 1, nb, w, a, out); break;                                      \
        }                                                                                              \
    }

SQ_AVX2_KERNELS(dot_q8_0, SQ_Q8_0)
SQ_AVX2_KERNELS(dot_q4_0, SQ_Q4_0)
SQ_AVX2_KERNELS(dot_q4_1, SQ_Q4_1)
SQ_AVX2_KERNELS(dot_q5_0, SQ_Q5_0)
SQ_AVX2_KERNELS(dot_q5_1, SQ_Q5_1)
SQ_AVX2_KERNELS(dot_iq4_nl, SQ_IQ4_NL)

void sq_register_avx2(sq_dot_fn t[SQ_TYPE_LIMIT], sq_dot_rows_fn r[SQ_TYPE_LIMIT]) {
    t[SQ_Q8_0] = dot_q8_0_avx2;     r[SQ_Q8_0] = dot_q8_0_avx2_rows;
    t[SQ_Q4_0] = dot_q4_0_avx2;     r[SQ_Q4_0] = dot_q4_0_avx2_rows;
    t[SQ_Q4_1] = dot_q4_1_avx2;     r[SQ_Q4_1] = dot_q4_1_avx2_rows;
    t[SQ_Q5_0] = dot_q5_0_avx2;     r[SQ_Q5_0] = dot_q5_0_avx2_rows;
    t[SQ_Q5_1] = dot_q5_1_avx2;     r[SQ_Q5_1] = dot_q5_1_avx2_rows;
    t[SQ_IQ4_NL] = dot_iq4_nl_avx2; r[SQ_IQ4_NL] = dot_iq4_nl_avx2_rows;
}

#else
void sq_register_avx2(sq_dot_fn t[SQ_TYPE_LIMIT], sq_dot_rows_fn r[SQ_TYPE_LIMIT]) { (void)t; (void)r; }
#endif
