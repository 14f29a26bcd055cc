// AVX-512 single-row kernels for the 32-wide legacy kinds, four weight blocks per step:
// the generation path (one activation row against every weight row) of `qdot_avx512.c`.
//
// The 256-bit kernels spend most of their instructions per block on scales: an f16 load,
// conversion, a shuffle into place and a multiply for every 32 weights. Here four blocks
// (72–136 bytes) come in with two or three 64-byte loads, and one `vpermt2w` gathers
// their quants into a 512-bit register while another gathers their four f16 scales (and
// minimums, and Q5's fifth bits) into one 128-bit lane; a single `vcvtph2ps`, multiply
// and `vpermps` then scale all four blocks. Every block offset is even, so word
// permutes (AVX-512 BW) suffice and no VBMI is needed.
//
// Arithmetic per block is the scalar reference's (qdot_scalar.c): an exact i32 Σ q·a,
// times d_w·d_a in f32; the minimum term accumulates d·s (Q4_0, Q5_0: times −8 or −16
// once at the end, exact powers of two) or m·s (Q4_1, Q5_1). Only the order of the f32
// additions differs. A last group of one to three blocks is loaded under masks, so the
// absent blocks read as zero (their scales are zero, so any activation bytes cancel)
// and nothing past the row or the activation is touched.
//
// Registered only at the AVX-512 level; NEON and AVX2 keep their one-block-at-a-time
// kernels (qdot_neon.c, qdot_avx2.c).
#include "qdot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "qdot_x86.h"

#define SQ_AI __attribute__((always_inline))

// Word-permute indices for one kind, built once at registration (`build_indexes`).
typedef struct {
    uint16_t quants[32];  // nibble kinds: the 4 × 16 quant bytes; Q8_0: blocks 0–1 from (A, B)
    uint16_t quants2[32]; // Q8_0: blocks 2–3 from (B, C)
    uint16_t scales[32];  // words 0–7: [d, m] per block (d twice without m); 8–11: qh low; 12–15: qh high
} gemv_indexes;

static _Alignas(64) gemv_indexes indexes[SQ_TYPE_LIMIT];

// Bytes of a block, and the offsets of its quants, minimum and fifth bits (−1: none).
static int block_bytes(int kind) { return kind == SQ_Q8_0 ? 34 : kind == SQ_Q4_1 ? 20 : kind == SQ_Q5_0 ? 22 : kind == SQ_Q5_1 ? 24 : 18; }
static int quants_offset(int kind) { return kind == SQ_Q8_0 ? 2 : kind == SQ_Q4_1 ? 4 : kind == SQ_Q5_0 ? 6 : kind == SQ_Q5_1 ? 8 : 2; }
static int min_offset(int kind) { return kind == SQ_Q4_1 || kind == SQ_Q5_1 ? 2 : -1; }
static int high_offset(int kind) { return kind == SQ_Q5_0 ? 2 : kind == SQ_Q5_1 ? 4 : -1; }

static void build_indexes(int kind) {
    gemv_indexes *x = &indexes[kind];
    const int bs = block_bytes(kind), qs = quants_offset(kind), m = min_offset(kind), h = high_offset(kind);
    memset(x, 0, sizeof *x);
    for (int i = 0; i < 32; i++) {
        if (kind == SQ_Q8_0) {
            x->quants[i] = (uint16_t)((bs * (i / 16) + qs) / 2 + i % 16);
            x->quants2[i] = (uint16_t)((bs * (2 + i / 16) + qs - 64) / 2 + i % 16);
        } else {
            x->quants[i] = (uint16_t)((bs * (i / 8) + qs) / 2 + i % 8);
        }
    }
    for (int k = 0; k < 4; k++) {
        x->scales[2 * k] = (uint16_t)(bs * k / 2);
        x->scales[2 * k + 1] = (uint16_t)((bs * k + (m >= 0 ? m : 0)) / 2);
        if (h >= 0) {
            x->scales[8 + k] = (uint16_t)((bs * k + h) / 2);
            x->scales[12 + k] = (uint16_t)((bs * k + h + 2) / 2);
        }
    }
}

// Lowest `n` bits set (n ≤ 64).
static inline uint64_t low_bits(size_t n) { return n >= 64 ? ~0ULL : (1ULL << n) - 1; }

// The activation quants of nibble-kind blocks b…b+k−1 (k ≤ 4, b even) rearranged to
// match the weights' [block 0 | 1 | 2 | 3] order: `lo` the first 16 values of each block,
// `hi` the last 16. Pairs of blocks sit as [lo lo hi hi] (CKernels.h); an odd last block
// is in order, [lo hi].
typedef struct {
    __m512i lo, hi;
} quad_acts;

SQ_VNNI static inline SQ_AI quad_acts load_acts(const int8_t *qs, size_t b, size_t k) {
    quad_acts r;
    if (k == 4) {
        __m512i p1 = _mm512_loadu_si512(qs + 32 * b), p2 = _mm512_loadu_si512(qs + 32 * b + 64);
        r.lo = _mm512_shuffle_i64x2(p1, p2, 0x44);
        r.hi = _mm512_shuffle_i64x2(p1, p2, 0xEE);
    } else if (k == 1) {  // an odd last block, in order
        __m512i p = _mm512_maskz_loadu_epi8(low_bits(32), qs + 32 * b);
        r.lo = p;
        r.hi = _mm512_shuffle_i64x2(p, p, 0x01);
    } else {  // a pair, then (k = 3) an odd last block in order
        __m512i p1 = _mm512_loadu_si512(qs + 32 * b);
        __m512i p2 = _mm512_maskz_loadu_epi8(low_bits(32 * (k - 2)), qs + 32 * b + 64);
        r.lo = _mm512_shuffle_i64x2(p1, p2, 0x44);
        r.hi = _mm512_shuffle_i64x2(p1, p2, 0x1E);
    }
    return r;
}

// |v| · (a negated where v < 0) added to `acc`: a signed × signed product through dpbusd.
// (Where v = 0 the product is 0 whatever a is; a is never −128.)
SQ_VNNI static inline __m512i dot_signed_z(__m512i acc, __m512i v, __m512i a) {
    __m512i signed_a = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(v), _mm512_setzero_si512(), a);
    return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(v), signed_a);
}

// Four (or, in the last group, k) nibble-kind blocks starting at block b: adds Σ q·a × d·d_a
// to `acc` and [d·d_a, m·s] pairs (or [d·d_a, d·s]) to `accm`.
SQ_VNNI static inline SQ_AI void quad_step(int kind, const uint8_t *w, const sq_act *a, size_t b, size_t k,
                                           const gemv_indexes *ix, __m512 *acc, __m256 *accm) {
    const size_t bs = (size_t)block_bytes(kind);
    const uint8_t *x = w + bs * b;
    __m512i A, B;
    if (k == 4) {
        A = _mm512_loadu_si512(x);
        B = _mm512_maskz_loadu_epi8(low_bits(4 * bs - 64), x + 64);
    } else {
        A = _mm512_maskz_loadu_epi8(low_bits(k * bs), x);
        B = _mm512_maskz_loadu_epi8(k * bs > 64 ? low_bits(k * bs - 64) : 0, x + 64);
    }
    __m512i q = _mm512_permutex2var_epi16(A, _mm512_load_si512(ix->quants), B);
    __m512i f = _mm512_permutex2var_epi16(A, _mm512_load_si512(ix->scales), B);
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    __m512i lo = _mm512_and_si512(q, low4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
    if (kind == SQ_Q5_0 || kind == SQ_Q5_1) {
        __m128i qh = _mm512_extracti32x4_epi32(f, 1);
        const __m512i bit4 = _mm512_set1_epi8(0x10);
        lo = _mm512_mask_add_epi8(lo, (__mmask64)_mm_cvtsi128_si64(qh), lo, bit4);
        hi = _mm512_mask_add_epi8(hi, (__mmask64)_mm_extract_epi64(qh, 1), hi, bit4);
    }
    quad_acts y = load_acts(a->qs, b, k);
    __m512i isum;
    if (kind == SQ_IQ4_NL) {
        const __m512i book = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)sq_iq4_values));
        isum = dot_signed_z(dot_signed_z(_mm512_setzero_si512(), _mm512_shuffle_epi8(book, lo), y.lo),
                            _mm512_shuffle_epi8(book, hi), y.hi);
    } else {
        isum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, y.lo), hi, y.hi);
    }
    __m256 dm = _mm256_cvtph_ps(_mm512_castsi512_si128(f));  // [d0, m0, d1, m1, …] (m = d without a minimum)
    __m256 das = k == 4 ? _mm256_loadu_ps(a->d + 2 * b) : _mm256_maskz_loadu_ps((__mmask8)low_bits(2 * k), a->d + 2 * b);
    __m256 prod = _mm256_mul_ps(dm, das);  // [d·d_a, m·s] per block
    *accm = _mm256_add_ps(*accm, prod);
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
    __m512 scale = _mm512_permutexvar_ps(spread, _mm512_castps256_ps512(prod));
    *acc = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum), *acc);
}

// The minimum terms' factor: the sums in `accm`'s odd lanes are d·s for Q4_0 and Q5_0
// (offsets −8 and −16) and m·s for Q4_1 and Q5_1.
static inline float min_factor(int kind) {
    return kind == SQ_Q4_0 ? -8.0f : kind == SQ_Q5_0 ? -16.0f : kind == SQ_Q4_1 || kind == SQ_Q5_1 ? 1.0f : 0.0f;
}

SQ_VNNI static inline SQ_AI float finish(int kind, __m512 acc, __m256 accm) {
    float sum = _mm512_reduce_add_ps(acc);
    if (min_factor(kind) == 0) return sum;
    __m256 odd = _mm256_permutevar8x32_ps(accm, _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7));
    __m128 m = _mm256_castps256_ps128(odd);
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return sum + min_factor(kind) * _mm_cvtss_f32(m);
}

SQ_VNNI static inline SQ_AI float dot_nibbles_gemv(int kind, size_t nb, const uint8_t *w, const sq_act *a) {
    const gemv_indexes *ix = &indexes[kind];
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    size_t b = 0;
    for (; b + 8 <= nb; b += 8) {  // two independent chains of fused multiply-adds
        quad_step(kind, w, a, b, 4, ix, &acc0, &accm);
        quad_step(kind, w, a, b + 4, 4, ix, &acc1, &accm);
    }
    if (b + 4 <= nb) {
        quad_step(kind, w, a, b, 4, ix, &acc0, &accm);
        b += 4;
    }
    switch (nb - b) {
    case 3: quad_step(kind, w, a, b, 3, ix, &acc1, &accm); break;
    case 2: quad_step(kind, w, a, b, 2, ix, &acc1, &accm); break;
    case 1: quad_step(kind, w, a, b, 1, ix, &acc1, &accm); break;
    default: break;
    }
    return finish(kind, _mm512_add_ps(acc0, acc1), accm);
}

// Q8_0: four 34-byte blocks (136 bytes) from three loads; two blocks per 512-bit register,
// against activations that are in order.
SQ_VNNI static inline SQ_AI void quad_step_q8(const uint8_t *w, const sq_act *a, size_t b, size_t k,
                                              const gemv_indexes *ix, __m512 *acc) {
    const uint8_t *x = w + 34 * b;
    const size_t bytes = 34 * k;
    __m512i A = _mm512_maskz_loadu_epi8(low_bits(bytes), x);
    __m512i B = _mm512_maskz_loadu_epi8(bytes > 64 ? low_bits(bytes - 64) : 0, x + 64);
    __m512i C = _mm512_maskz_loadu_epi8(bytes > 128 ? low_bits(bytes - 128) : 0, x + 128);
    __m512i q01 = _mm512_permutex2var_epi16(A, _mm512_load_si512(ix->quants), B);
    __m512i q23 = _mm512_permutex2var_epi16(B, _mm512_load_si512(ix->quants2), C);
    __m512i f = _mm512_permutex2var_epi16(A, _mm512_load_si512(ix->scales), B);
    __m512i y01 = _mm512_maskz_loadu_epi8(low_bits(32 * k), a->qs + 32 * b);
    __m512i y23 = _mm512_maskz_loadu_epi8(k > 2 ? low_bits(32 * (k - 2)) : 0, a->qs + 32 * b + 64);
    __m512i s01 = dot_signed_z(_mm512_setzero_si512(), q01, y01);
    __m512i s23 = dot_signed_z(_mm512_setzero_si512(), q23, y23);
    __m256 dm = _mm256_cvtph_ps(_mm512_castsi512_si128(f));  // [d0, d0, d1, d1, …]
    __m256 das = _mm256_maskz_loadu_ps((__mmask8)low_bits(2 * k), a->d + 2 * b);
    __m512 prod = _mm512_castps256_ps512(_mm256_mul_ps(dm, das));
    const __m512i spread01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i spread23 = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6);
    *acc = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread01, prod), _mm512_cvtepi32_ps(s01), *acc);
    *acc = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread23, prod), _mm512_cvtepi32_ps(s23), *acc);
}

SQ_VNNI static float dot_q8_0_gemv(size_t nb, const uint8_t *w, const sq_act *a) {
    const gemv_indexes *ix = &indexes[SQ_Q8_0];
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        quad_step_q8(w, a, b, 4, ix, &acc0);
        quad_step_q8(w, a, b + 4, 4, ix, &acc1);
    }
    if (b + 4 <= nb) {
        quad_step_q8(w, a, b, 4, ix, &acc0);
        b += 4;
    }
    switch (nb - b) {
    case 3: quad_step_q8(w, a, b, 3, ix, &acc1); break;
    case 2: quad_step_q8(w, a, b, 2, ix, &acc1); break;
    case 1: quad_step_q8(w, a, b, 1, ix, &acc1); break;
    default: break;
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

#define SQ_GEMV_KERNEL(name, kind)                                                   \
    SQ_VNNI static float name##_gemv(size_t nb, const uint8_t *w, const sq_act *a) { \
        return dot_nibbles_gemv(kind, nb, w, a);                                     \
    }
SQ_GEMV_KERNEL(dot_q4_0, SQ_Q4_0)
SQ_GEMV_KERNEL(dot_q4_1, SQ_Q4_1)
SQ_GEMV_KERNEL(dot_q5_0, SQ_Q5_0)
SQ_GEMV_KERNEL(dot_q5_1, SQ_Q5_1)
SQ_GEMV_KERNEL(dot_iq4_nl, SQ_IQ4_NL)

void sq_register_avx512_gemv(sq_dot_fn t[SQ_TYPE_LIMIT]) {
    const int kinds[] = { SQ_Q8_0, SQ_Q4_0, SQ_Q4_1, SQ_Q5_0, SQ_Q5_1, SQ_IQ4_NL };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) build_indexes(kinds[i]);
    t[SQ_Q8_0] = dot_q8_0_gemv;
    t[SQ_Q4_0] = dot_q4_0_gemv;
    t[SQ_Q4_1] = dot_q4_1_gemv;
    t[SQ_Q5_0] = dot_q5_0_gemv;
    t[SQ_Q5_1] = dot_q5_1_gemv;
    t[SQ_IQ4_NL] = dot_iq4_nl_gemv;
}

#else
void sq_register_avx512_gemv(sq_dot_fn t[SQ_TYPE_LIMIT]) { (void)t; }
#endif
