// AVX-512 VNNI kernels for the 32-wide legacy kinds: `vpdpbusd` multiplies u8 × i8 and
// sums groups of four straight into i32, replacing AVX2's maddubs + madd pair (and its
// i16 intermediate), and AVX-512 BW mask registers supply Q5's fifth bits directly. The
// data flow is the AVX2 one (qdot_avx2.c): 256-bit registers, nibble kinds two blocks
// per step against the paired activation layout. (512-bit registers need lane-crossing
// shuffles here and run at half rate on Zen 4; they measured no faster.)
//
// Multi-row kernels take up to eight activation rows per pass (32 registers hold their
// accumulators): the weights are unpacked once and dotted with every row.
// The k-quants use the AVX2 kernels at this level.
#include "qdot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "qdot_x86.h"

#define SQ_AI __attribute__((always_inline))

// |v| · (a with v's signs): a signed × signed product through dpbusd, added to `acc`.
SQ_VNNI static inline __m256i dot_signed_v(__m256i acc, __m256i v, __m256i a) {
    return _mm256_dpbusd_epi32(acc, _mm256_abs_epi8(v), _mm256_sign_epi8(a, v));
}

// Bit j of `bits` as 0x10 in byte j.
SQ_VNNI static inline __m256i fifth_v(uint32_t bits) {
    return _mm256_maskz_mov_epi8((__mmask32)bits, _mm256_set1_epi8(0x10));
}

// One block in order (Q8_0, or the odd last block of a nibble kind) against 32
// contiguous activation bytes.
SQ_VNNI static inline SQ_AI __m256i block_isum_v(int kind, const uint8_t *x, __m256i a) {
    const __m256i zero = _mm256_setzero_si256();
    switch (kind) {
    case SQ_Q8_0: return dot_signed_v(zero, _mm256_loadu_si256((const __m256i *)(x + 2)), a);
    case SQ_IQ4_NL: return dot_signed_v(zero, _mm256_shuffle_epi8(sq_iq4_book_avx2(), sq_nibbles_avx2(x + 2)), a);
    case SQ_Q4_0: return _mm256_dpbusd_epi32(zero, sq_nibbles_avx2(x + 2), a);
    case SQ_Q4_1: return _mm256_dpbusd_epi32(zero, sq_nibbles_avx2(x + 4), a);
    default: {
        size_t qh = kind == SQ_Q5_0 ? 2 : 4;
        return _mm256_dpbusd_epi32(zero, _mm256_or_si256(sq_nibbles_avx2(x + qh + 4), fifth_v(sq_u32(x + qh))), a);
    }
    }
}

// Two blocks of a nibble kind: `lo` holds values 0…15 of both, `hi` values 16…31.
typedef struct {
    __m256i lo, hi;
} pair_quants_v;

SQ_VNNI static inline SQ_AI pair_quants_v load_pair_v(int kind, const uint8_t *x0, const uint8_t *x1) {
    size_t qh = kind == SQ_Q5_0 ? 2 : 4, qs = kind == SQ_Q4_0 || kind == SQ_IQ4_NL ? 2 : kind == SQ_Q4_1 ? 4 : qh + 4;
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(x0 + qs))),
                                        _mm_loadu_si128((const __m128i *)(x1 + qs)), 1);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    pair_quants_v p = { _mm256_and_si256(q, low4), _mm256_and_si256(_mm256_srli_epi16(q, 4), low4) };
    if (kind == SQ_Q5_0 || kind == SQ_Q5_1) {
        uint32_t h0 = sq_u32(x0 + qh), h1 = sq_u32(x1 + qh);
        p.lo = _mm256_or_si256(p.lo, fifth_v((h0 & 0xFFFFu) | h1 << 16));
        p.hi = _mm256_or_si256(p.hi, fifth_v(h0 >> 16 | (h1 & 0xFFFF0000u)));
    } else if (kind == SQ_IQ4_NL) {
        p.lo = _mm256_shuffle_epi8(sq_iq4_book_avx2(), p.lo);
        p.hi = _mm256_shuffle_epi8(sq_iq4_book_avx2(), p.hi);
    }
    return p;
}

// The pair against its 64 activation bytes: i32 lanes 0–3 belong to block 0, 4–7 to block 1.
SQ_VNNI static inline SQ_AI __m256i pair_isum_v(int kind, pair_quants_v q, const int8_t *y) {
    __m256i alo = _mm256_loadu_si256((const __m256i *)y), ahi = _mm256_loadu_si256((const __m256i *)(y + 32));
    if (kind == SQ_IQ4_NL) return dot_signed_v(dot_signed_v(_mm256_setzero_si256(), q.lo, alo), q.hi, ahi);
    return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q.lo, alo), q.hi, ahi);
}

// One nibble-kind pair (blocks b, b + 1) against `na` rows, into accumulators k….
SQ_VNNI static inline SQ_AI void pair_step_v(int kind, int na, size_t b, int k, const uint8_t *w,
                                             const sq_act *a, __m256 *acc, __m128 *accm) {
    const size_t bytes = sq_legacy_bytes(kind);
    const uint8_t *x0 = w + bytes * b, *x1 = x0 + bytes;
    pair_quants_v q = load_pair_v(kind, x0, x1);
    __m128 wdm = _mm_movelh_ps(sq_scale_min_x86(kind, x0), sq_scale_min_x86(kind, x1));  // [d0, m0, d1, m1]
    const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
    for (int j = 0; j < na; j++) {
        __m256i p = pair_isum_v(kind, q, a[j].qs + 32 * b);
        __m128 s = _mm_mul_ps(wdm, _mm_loadu_ps(a[j].d + 2 * b));  // [d0·da0, m0·s0, d1·da1, m1·s1]
        __m256 sv = _mm256_permutexvar_ps(spread, _mm256_castps128_ps256(s));
        acc[j + k] = _mm256_fmadd_ps(sv, _mm256_cvtepi32_ps(p), acc[j + k]);
        accm[j + k] = _mm_add_ps(accm[j + k], s);
    }
}

// One block in order (blocks of Q8_0, the odd last block of a nibble kind).
SQ_VNNI static inline SQ_AI void block_step_v(int kind, int na, size_t b, int k, const uint8_t *w,
                                              const sq_act *a, __m256 *acc, __m128 *accm) {
    const uint8_t *x = w + sq_legacy_bytes(kind) * b;
    __m128 wdm = sq_scale_min_x86(kind, x);
    for (int j = 0; j < na; j++) {
        __m256i p = block_isum_v(kind, x, _mm256_loadu_si256((const __m256i *)(a[j].qs + 32 * b)));
        __m128 s = _mm_mul_ps(wdm, sq_load2_ps(a[j].d + 2 * b));  // [d·da, m·s]
        acc[j + k] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s), _mm256_cvtepi32_ps(p), acc[j + k]);
        accm[j + k] = _mm_add_ps(accm[j + k], s);
    }
}

// Dot products of one weight row with `na` (1…8, a constant after inlining) activation
// rows; a single row alternates two accumulators (see qdot_avx2.c).
SQ_VNNI static inline SQ_AI void dot_legacy_v(int kind, int na, size_t nb, const uint8_t *w, const sq_act *a,
                                              float *out) {
    __m256 acc[SQ_MAX_ROWS + 1];
    __m128 accm[SQ_MAX_ROWS + 1];
    for (int j = 0; j <= na; j++) {
        acc[j] = _mm256_setzero_ps();
        accm[j] = _mm_setzero_ps();
    }
    const size_t step = kind == SQ_Q8_0 ? 1 : 2;
    size_t b = 0;
    if (na == 1) {
        for (; b + 2 * step <= nb; b += 2 * step) {
            if (step == 1) {
                block_step_v(kind, 1, b, 0, w, a, acc, accm);
                block_step_v(kind, 1, b + 1, 1, w, a, acc, accm);
            } else {
                pair_step_v(kind, 1, b, 0, w, a, acc, accm);
                pair_step_v(kind, 1, b + 2, 1, w, a, acc, accm);
            }
        }
    }
    for (; b + step <= nb; b += step) {
        if (step == 1) block_step_v(kind, na, b, 0, w, a, acc, accm);
        else pair_step_v(kind, na, b, 0, w, a, acc, accm);
    }
    if (b < nb) block_step_v(kind, na, b, 0, w, a, acc, accm);  // odd last block
    if (na == 1) {
        acc[0] = _mm256_add_ps(acc[0], acc[1]);
        accm[0] = _mm_add_ps(accm[0], accm[1]);
    }
    for (int j = 0; j < na; j++) {
        float sum = sq_hsum256(acc[j]);
        // Minimum terms sit in lanes 1 and 3.
        float summ = _mm_cvtss_f32(_mm_add_ss(_mm_movehdup_ps(accm[j]), _mm_shuffle_ps(accm[j], accm[j], 3)));
        out[j] = sq_has_min(kind) ? sum + summ : sum;
    }
}

// Entry points: the up-to-eight-row kernel per kind (the single-row kernels of this level
// are qdot_avx512_gemv.c's).
#define SQ_VNNI_KERNELS(name, kind)                                                                    \
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
    (void)t;  // sq_register_avx512_gemv fills the single-row table
    r[SQ_Q8_0] = dot_q8_0_vnni_rows;
    r[SQ_Q4_0] = dot_q4_0_vnni_rows;
    r[SQ_Q4_1] = dot_q4_1_vnni_rows;
    r[SQ_Q5_0] = dot_q5_0_vnni_rows;
    r[SQ_Q5_1] = dot_q5_1_vnni_rows;
    r[SQ_IQ4_NL] = dot_iq4_nl_vnni_rows;
}

#else
void sq_register_avx512(sq_dot_fn t[SQ_TYPE_LIMIT], sq_dot_rows_fn r[SQ_TYPE_LIMIT]) { (void)t; (void)r; }
#endif
