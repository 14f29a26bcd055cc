// AVX-512 VNNI kernels for the 32-wide legacy kinds. Two blocks per step fill a 512-bit
// register (64 weights against 64 contiguous activation bytes) and `vpdpbusd` multiplies
// u8 × i8 and sums groups of four straight into i32, replacing AVX2's maddubs + madd
// pair. AVX-512 has no byte `sign`, so signed weights (Q8_0, IQ4_NL) negate the
// activation under the weights' sign mask instead. An odd last block uses 256 bits.
//
// The multi-row kernels take up to eight activation rows (32 zmm registers hold their
// accumulators): the weights are unpacked once and dotted with every row (prompt
// processing reuses each weight block that many times).
// The k-quants use the AVX2 kernels at this level.
#include "qdot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "qdot_x86.h"

// Two blocks' 16 nibble bytes as [lo0, hi0, lo1, hi1] (each 16 bytes), matching the
// activation order: weights 0…15 and 16…31 of block 0, then of block 1.
SQ_VNNI static inline __m512i nibbles2_v(const uint8_t *p0, const uint8_t *p1) {
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)),
                                        _mm_loadu_si128((const __m128i *)p1), 1);
    __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
    both = _mm512_and_si512(both, _mm512_set1_epi8(0x0F));
    return _mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(3, 1, 2, 0));
}

// Two blocks' weights ready for dpbusd: unsigned bytes, and for the signed kinds the
// mask of negative weights (whose activations get negated).
typedef struct {
    __m512i u;
    __mmask64 neg;
} pair_weights;

SQ_VNNI static inline __attribute__((always_inline)) pair_weights load_pair_v(int kind, const uint8_t *x0, const uint8_t *x1) {
    pair_weights p = { _mm512_setzero_si512(), 0 };
    switch (kind) {
    case SQ_Q8_0: {
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(x0 + 2))),
                                       _mm256_loadu_si256((const __m256i *)(x1 + 2)), 1);
        p.neg = _mm512_movepi8_mask(w);
        p.u = _mm512_abs_epi8(w);
        break;
    }
    case SQ_IQ4_NL: {
        const __m512i book = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)sq_iq4_values));
        __m512i w = _mm512_shuffle_epi8(book, nibbles2_v(x0 + 2, x1 + 2));
        p.neg = _mm512_movepi8_mask(w);
        p.u = _mm512_abs_epi8(w);
        break;
    }
    case SQ_Q4_0: p.u = nibbles2_v(x0 + 2, x1 + 2); break;
    case SQ_Q4_1: p.u = nibbles2_v(x0 + 4, x1 + 4); break;
    default: {  // Q5_0, Q5_1: the fifth bits come straight from a mask register
        size_t qh = kind == SQ_Q5_0 ? 2 : 4, qs = qh + 4;
        __mmask64 high = (__mmask64)sq_u32(x0 + qh) | (__mmask64)sq_u32(x1 + qh) << 32;
        p.u = _mm512_or_si512(nibbles2_v(x0 + qs, x1 + qs), _mm512_maskz_mov_epi8(high, _mm512_set1_epi8(0x10)));
    }
    }
    return p;
}

// One block's i32 partial sums with 256-bit registers (the odd block at the end).
SQ_VNNI static inline __attribute__((always_inline)) __m256i block_isum_v(int kind, const uint8_t *x, const int8_t *y) {
    __m256i a = _mm256_loadu_si256((const __m256i *)y), zero = _mm256_setzero_si256();
    switch (kind) {
    case SQ_Q8_0: {
        __m256i w = _mm256_loadu_si256((const __m256i *)(x + 2));
        return _mm256_dpbusd_epi32(zero, _mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
    }
    case SQ_IQ4_NL: {
        __m256i v = _mm256_shuffle_epi8(sq_iq4_book_avx2(), sq_nibbles_avx2(x + 2));
        return _mm256_dpbusd_epi32(zero, _mm256_abs_epi8(v), _mm256_sign_epi8(a, v));
    }
    case SQ_Q4_0: return _mm256_dpbusd_epi32(zero, sq_nibbles_avx2(x + 2), a);
    case SQ_Q4_1: return _mm256_dpbusd_epi32(zero, sq_nibbles_avx2(x + 4), a);
    default: {
        size_t qh = kind == SQ_Q5_0 ? 2 : 4;
        __m256i q = _mm256_or_si256(sq_nibbles_avx2(x + qh + 4),
                                    _mm256_maskz_mov_epi8((__mmask32)sq_u32(x + qh), _mm256_set1_epi8(0x10)));
        return _mm256_dpbusd_epi32(zero, q, a);
    }
    }
}

// Dot products of one weight row with `na` (1…8, a constant after inlining) activation rows.
SQ_VNNI static inline __attribute__((always_inline)) void dot_legacy_v(int kind, int na, size_t nb, const uint8_t *w, const sq_act *a, float *out) {
    const size_t bytes = sq_legacy_bytes(kind);
    const int signed_kind = kind == SQ_Q8_0 || kind == SQ_IQ4_NL;
    // Lane k of `spread` picks the scale of the block that lane k belongs to.
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    __m512 acc[SQ_MAX_ROWS];
    __m128 accm[SQ_MAX_ROWS];
    for (int j = 0; j < na; j++) {
        acc[j] = _mm512_setzero_ps();
        accm[j] = _mm_setzero_ps();
    }
    size_t b = 0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *x0 = w + bytes * b, *x1 = x0 + bytes;
        pair_weights q = load_pair_v(kind, x0, x1);
        __m128 wdm = _mm_movelh_ps(sq_scale_min_x86(kind, x0), sq_scale_min_x86(kind, x1));  // [d0, m0, d1, m1]
        for (int j = 0; j < na; j++) {
            __m512i y = _mm512_loadu_si512((const void *)(a[j].qs + 32 * b));
            if (signed_kind) y = _mm512_mask_sub_epi8(y, q.neg, _mm512_setzero_si512(), y);
            __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q.u, y);
            // × [da0, s0, da1, s1] = [d0·da0, m0·s0, d1·da1, m1·s1]
            __m128 s = _mm_mul_ps(wdm, _mm_loadu_ps(a[j].d + 2 * b));
            acc[j] = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread, _mm512_castps128_ps512(s)),
                                     _mm512_cvtepi32_ps(p), acc[j]);
            accm[j] = _mm_add_ps(accm[j], s);
        }
    }
    for (int j = 0; j < na; j++) {
        float sum = _mm512_reduce_add_ps(acc[j]);
        float summ = _mm_cvtss_f32(_mm_add_ss(_mm_movehdup_ps(accm[j]), _mm_shuffle_ps(accm[j], accm[j], 3)));
        if (b < nb) {
            const uint8_t *x0 = w + bytes * b;
            __m128 s = _mm_mul_ps(sq_scale_min_x86(kind, x0), sq_load2_ps(a[j].d + 2 * b));
            sum += _mm_cvtss_f32(s) * sq_hsum256(_mm256_cvtepi32_ps(block_isum_v(kind, x0, a[j].qs + 32 * b)));
            summ += _mm_cvtss_f32(_mm_movehdup_ps(s));
        }
        out[j] = sq_has_min(kind) ? sum + summ : sum;
    }
}

// Entry points: the single-row kernel and the up-to-eight-row one, per kind.
#define SQ_VNNI_KERNELS(name, kind)                                                                    \
    SQ_VNNI static float name##_vnni(size_t nb, const uint8_t *w, const sq_act *a) {                \
        float out;                                                                                     \
        dot_legacy_v(kind, 1, nb, w, a, &out);                                                         \
        return out;                                                                                    \
    }                                                                                                  \
    SQ_VNNI static void name##_vnni_rows(size_t nb, const uint8_t *w, const sq_act *a, int na, float *out) { \
        switch (na) {                                                                                  \
        case 8: dot_legacy_v(kind, 8, nb, w, a, out); break;                                          \
        case 7: dot_legacy_v(kind, 7, nb, w, a, out); break;                                          \
        case 6: dot_legacy_v(kind, 6, nb, w, a, out); break;                                          \
        case 5: dot_legacy_v(kind, 5, nb, w, a, out); break;                                          \
        case 4: dot_legacy_v(kind, 4, nb, w, a, out); break;                                          \
        case 3: dot_legacy_v(kind, 3, nb, w, a, out); break;                                          \
        case 2: dot_legacy_v(kind, 2, nb, w, a, out); break;                                          \
        default: dot_legacy_v(kind, 1, nb, w, a, out); break;                                         \
        }                                                                                              \
    }

SQ_VNNI_KERNELS(dot_q8_0, SQ_Q8_0)
SQ_VNNI_KERNELS(dot_q4_0, SQ_Q4_0)
SQ_VNNI_KERNELS(dot_q4_1, SQ_Q4_1)
SQ_VNNI_KERNELS(dot_q5_0, SQ_Q5_0)
SQ_VNNI_KERNELS(dot_q5_1, SQ_Q5_1)
SQ_VNNI_KERNELS(dot_iq4_nl, SQ_IQ4_NL)

void sq_register_avx512(sq_dot_fn t[SQ_TYPE_LIMIT], sq_dot_rows_fn r[SQ_TYPE_LIMIT]) {
    t[SQ_Q8_0] = dot_q8_0_vnni;     r[SQ_Q8_0] = dot_q8_0_vnni_rows;
    t[SQ_Q4_0] = dot_q4_0_vnni;     r[SQ_Q4_0] = dot_q4_0_vnni_rows;
    t[SQ_Q4_1] = dot_q4_1_vnni;     r[SQ_Q4_1] = dot_q4_1_vnni_rows;
    t[SQ_Q5_0] = dot_q5_0_vnni;     r[SQ_Q5_0] = dot_q5_0_vnni_rows;
    t[SQ_Q5_1] = dot_q5_1_vnni;     r[SQ_Q5_1] = dot_q5_1_vnni_rows;
    t[SQ_IQ4_NL] = dot_iq4_nl_vnni; r[SQ_IQ4_NL] = dot_iq4_nl_vnni_rows;
}

#else
void sq_register_avx512(sq_dot_fn t[SQ_TYPE_LIMIT], sq_dot_rows_fn r[SQ_TYPE_LIMIT]) { (void)t; (void)r; }
#endif
