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
// The nibble kinds take two blocks per step: their 16 nibble bytes side by side in one
// register give [block 0 low nibbles | block 1 low nibbles] with one mask and the high
// nibbles with one shift, matching the paired activation layout (CKernels.h), so no
// lane-crossing shuffle is needed. Per block, [d_w, m] (from the f16 fields) times the
// activation's [d_a, s] gives [d_w·d_a, m·s] in one multiply: the first scales the
// block's i32 sums into the f32 accumulator, the second accumulates the minimum term in
// a vector register (a scalar chain there would serialise the loop).
//
// Multi-row kernels take up to four activation rows per pass (sixteen ymm registers):
// the weights are unpacked once and dotted with every row.
#include "qdot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "qdot_x86.h"

#define SQ_AI __attribute__((always_inline))

// Eight i32 sums of u8 × i8 over groups of four bytes.
SQ_AVX2 static inline __m256i dot_u8i8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// One block in order (Q8_0, or the odd last block of a nibble kind) against 32
// contiguous activation bytes.
SQ_AVX2 static inline SQ_AI __m256i block_isum_avx2(int kind, const uint8_t *x, __m256i a) {
    switch (kind) {
    case SQ_Q8_0: {
        __m256i w = _mm256_loadu_si256((const __m256i *)(x + 2));
        return dot_u8i8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    }
    case SQ_IQ4_NL: {
        __m256i v = _mm256_shuffle_epi8(sq_iq4_book_avx2(), sq_nibbles_avx2(x + 2));
        return dot_u8i8(_mm256_sign_epi8(v, v), _mm256_sign_epi8(a, v));
    }
    case SQ_Q4_0: return dot_u8i8(sq_nibbles_avx2(x + 2), a);
    case SQ_Q4_1: return dot_u8i8(sq_nibbles_avx2(x + 4), a);
    case SQ_Q5_0: return dot_u8i8(_mm256_or_si256(sq_nibbles_avx2(x + 6), sq_fifth_bits_avx2(sq_u32(x + 2))), a);
    default:      return dot_u8i8(_mm256_or_si256(sq_nibbles_avx2(x + 8), sq_fifth_bits_avx2(sq_u32(x + 4))), a);
    }
}

// Two blocks of a nibble kind: `lo` holds values 0…15 of both, `hi` values 16…31 (codebook
// values for IQ4_NL, q for the others).
typedef struct {
    __m256i lo, hi;
} pair_quants;

SQ_AVX2 static inline SQ_AI pair_quants load_pair_avx2(int kind, const uint8_t *x0, const uint8_t *x1) {
    size_t qh = kind == SQ_Q5_0 ? 2 : 4, qs = kind == SQ_Q4_0 || kind == SQ_IQ4_NL ? 2 : kind == SQ_Q4_1 ? 4 : qh + 4;
    __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(x0 + qs))),
                                        _mm_loadu_si128((const __m128i *)(x1 + qs)), 1);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    pair_quants p = { _mm256_and_si256(q, low4), _mm256_and_si256(_mm256_srli_epi16(q, 4), low4) };
    if (kind == SQ_Q5_0 || kind == SQ_Q5_1) {
        // Both blocks' 32 fifth bits in every quadword, [h0 | h1]; each 128-bit lane picks
        // its block's bytes (lane 0: h0, lane 1: h1 at bytes 4–7) and spreads a byte over
        // eight, one bit of it tested per byte: one broadcast for the pair instead of two.
        __m256i h = _mm256_set1_epi64x((long long)((uint64_t)sq_u32(x0 + qh) | (uint64_t)sq_u32(x1 + qh) << 32));
        const __m256i spread_lo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                   4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5);
        const __m256i spread_hi = _mm256_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
                                                   6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7);
        const __m256i select = _mm256_set1_epi64x(0x8040201008040201LL), fifth = _mm256_set1_epi8(0x10);
        __m256i blo = _mm256_and_si256(_mm256_shuffle_epi8(h, spread_lo), select);
        __m256i bhi = _mm256_and_si256(_mm256_shuffle_epi8(h, spread_hi), select);
        p.lo = _mm256_or_si256(p.lo, _mm256_and_si256(_mm256_cmpeq_epi8(blo, select), fifth));
        p.hi = _mm256_or_si256(p.hi, _mm256_and_si256(_mm256_cmpeq_epi8(bhi, select), fifth));
    } else if (kind == SQ_IQ4_NL) {
        p.lo = _mm256_shuffle_epi8(sq_iq4_book_avx2(), p.lo);
        p.hi = _mm256_shuffle_epi8(sq_iq4_book_avx2(), p.hi);
    }
    return p;
}

// The pair against its 64 activation bytes: i32 lanes 0–3 belong to block 0, 4–7 to block 1.
SQ_AVX2 static inline SQ_AI __m256i pair_isum_avx2(int kind, pair_quants q, const int8_t *y) {
    __m256i alo = _mm256_loadu_si256((const __m256i *)y), ahi = _mm256_loadu_si256((const __m256i *)(y + 32));
    if (kind == SQ_IQ4_NL)
        return _mm256_add_epi32(dot_u8i8(_mm256_sign_epi8(q.lo, q.lo), _mm256_sign_epi8(alo, q.lo)),
                                dot_u8i8(_mm256_sign_epi8(q.hi, q.hi), _mm256_sign_epi8(ahi, q.hi)));
    // |pair sums| ≤ 31·127·2 each, so the two add without leaving i16.
    __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(q.lo, alo), _mm256_maddubs_epi16(q.hi, ahi));
    return _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
}

// One nibble-kind pair (blocks b, b + 1) against `na` rows, into accumulators k….
SQ_AVX2 static inline SQ_AI void pair_step_avx2(int kind, int na, size_t b, int k, const uint8_t *w,
                                                const sq_act *a, __m256 *acc, __m128 *accm) {
    const size_t bytes = sq_legacy_bytes(kind);
    const uint8_t *x0 = w + bytes * b, *x1 = x0 + bytes;
    pair_quants q = load_pair_avx2(kind, x0, x1);
    __m128 wdm = _mm_movelh_ps(sq_scale_min_x86(kind, x0), sq_scale_min_x86(kind, x1));  // [d0, m0, d1, m1]
    const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
    for (int j = 0; j < na; j++) {
        __m256i p = pair_isum_avx2(kind, q, a[j].qs + 32 * b);
        __m128 s = _mm_mul_ps(wdm, _mm_loadu_ps(a[j].d + 2 * b));  // [d0·da0, m0·s0, d1·da1, m1·s1]
        __m256 sv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s), spread);
        acc[j + k] = _mm256_fmadd_ps(sv, _mm256_cvtepi32_ps(p), acc[j + k]);
        accm[j + k] = _mm_add_ps(accm[j + k], s);
    }
}

// One block in order (blocks of Q8_0, the odd last block of a nibble kind).
SQ_AVX2 static inline SQ_AI void block_step_avx2(int kind, int na, size_t b, int k, const uint8_t *w,
                                                 const sq_act *a, __m256 *acc, __m128 *accm) {
    const uint8_t *x = w + sq_legacy_bytes(kind) * b;
    __m128 wdm = sq_scale_min_x86(kind, x);
    for (int j = 0; j < na; j++) {
        __m256i p = block_isum_avx2(kind, x, _mm256_loadu_si256((const __m256i *)(a[j].qs + 32 * b)));
        __m128 s = _mm_mul_ps(wdm, sq_load2_ps(a[j].d + 2 * b));  // [d·da, m·s]
        acc[j + k] = _mm256_fmadd_ps(_mm256_broadcastss_ps(s), _mm256_cvtepi32_ps(p), acc[j + k]);
        accm[j + k] = _mm_add_ps(accm[j + k], s);
    }
}

// Dot products of one weight row with `na` (1…4, a constant after inlining) activation
// rows. A single row alternates two accumulators, so the loop is not bound by the latency
// of one chain of fused multiply-adds; several rows are independent chains already.
SQ_AVX2 static inline SQ_AI void dot_legacy_avx2(int kind, int na, size_t nb, const uint8_t *w, const sq_act *a,
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
                block_step_avx2(kind, 1, b, 0, w, a, acc, accm);
                block_step_avx2(kind, 1, b + 1, 1, w, a, acc, accm);
            } else {
                pair_step_avx2(kind, 1, b, 0, w, a, acc, accm);
                pair_step_avx2(kind, 1, b + 2, 1, w, a, acc, accm);
            }
        }
    }
    for (; b + step <= nb; b += step) {
        if (step == 1) block_step_avx2(kind, na, b, 0, w, a, acc, accm);
        else pair_step_avx2(kind, na, b, 0, w, a, acc, accm);
    }
    if (b < nb) block_step_avx2(kind, na, b, 0, w, a, acc, accm);  // odd last block
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

// MARK: Four weight rows, one activation row (generation)
//
// A single-row kernel spends about half its instructions per pair of blocks on scales:
// two f16 loads and conversions, the [d, m] products and their shuffles. Taking four
// weight rows per pass, the eight f16 scales of a pair of blocks in every row go into one
// register with word inserts and are converted, multiplied by the activation scales and
// accumulated for the minimum terms with one instruction each, and the activation quants
// are loaded once for all four rows. Per block the arithmetic is still the reference's:
// Σ q·a exact in i32, times d_w·d_a; the minimum term accumulates d·s (Q4_0, Q5_0: times
// −8 or −16 at the end, exact powers of two) or m·s.

// The f16 fields at `offset` of blocks b and b + 1 of four rows, widened:
// [r0 b, r1 b, r2 b, r3 b, r0 b+1, r1 b+1, r2 b+1, r3 b+1].
SQ_AVX2 static inline SQ_AI __m256 halves8(const uint8_t *const x[4], size_t bytes, size_t offset) {
    __m128i h = _mm_cvtsi32_si128(sq_u16(x[0] + offset));
    h = _mm_insert_epi16(h, sq_u16(x[1] + offset), 1);
    h = _mm_insert_epi16(h, sq_u16(x[2] + offset), 2);
    h = _mm_insert_epi16(h, sq_u16(x[3] + offset), 3);
    h = _mm_insert_epi16(h, sq_u16(x[0] + bytes + offset), 4);
    h = _mm_insert_epi16(h, sq_u16(x[1] + bytes + offset), 5);
    h = _mm_insert_epi16(h, sq_u16(x[2] + bytes + offset), 6);
    h = _mm_insert_epi16(h, sq_u16(x[3] + bytes + offset), 7);
    return _mm256_cvtph_ps(h);
}

// Dot products of nibble-kind weight rows w, w + stride, w + 2·stride, w + 3·stride with
// one activation row, into out[0..<4]. Per pair of blocks, each row's eight i32 partial
// sums (four per block) are folded by three horizontal adds into one vector of the eight
// exact block sums, [r0 b … r3 b, r0 b+1 … r3 b+1], which one conversion and one
// multiply-add by the matching scales (`halves8` order) accumulate for all four rows.
SQ_AVX2 static inline SQ_AI void dot4_legacy_avx2(int kind, size_t nb, const uint8_t *w, size_t stride,
                                                  const sq_act *a, float *out) {
    const size_t bytes = sq_legacy_bytes(kind);
    const int stored_min = kind == SQ_Q4_1 || kind == SQ_Q5_1;
    const float min_factor = kind == SQ_Q4_0 ? -8.0f : kind == SQ_Q5_0 ? -16.0f : 1.0f;
    __m256 acc = _mm256_setzero_ps();   // d_w·d_a·Σ q·a, lanes as `halves8`
    __m256 accm = _mm256_setzero_ps();  // d·s or m·s, lanes as `halves8`
    const __m256i by_block = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
    // The group SQ_PF_BYTES or more ahead (see `sq_pf_groups`) is touched ahead of its use.
    // For the 4-bit kinds its four rows are one run of 4·stride bytes, touched front to back
    // at the rate this group is consumed (a sequential stream: SmolLM2 Q4_0 generation
    // ~245 → ~260 t/s); for the 5-bit kinds each row's own line, which streamed faster there.
    const size_t ahead = sq_pf_groups(4 * stride) * 4 * stride, step = (8 * stride + nb - 1) / nb;
    const int sequential = kind == SQ_Q4_0 || kind == SQ_Q4_1 || kind == SQ_IQ4_NL;
    size_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *x[4] = { w + bytes * b, w + stride + bytes * b, w + 2 * stride + bytes * b,
                                w + 3 * stride + bytes * b };
        if (sequential) {
            for (size_t o = 0; o < step + 63; o += 64) _mm_prefetch((const char *)(w + ahead + step * (b / 2) + o), _MM_HINT_T0);
        } else {
            for (int r = 0; r < 4; r++) _mm_prefetch((const char *)(x[r] + ahead), _MM_HINT_T0);
        }
        __m256 ya = _mm256_castps128_ps256(_mm_loadu_ps(a->d + 2 * b));  // [d_a b, s b, d_a b+1, s b+1]
        __m256 yd = _mm256_permutevar8x32_ps(ya, by_block);               // [d_a b ×4, d_a b+1 ×4]
        __m256 dw = halves8(x, bytes, 0);
        __m256 scale = _mm256_mul_ps(dw, yd);
        if (stored_min || sq_has_min(kind)) {
            __m256 ys = _mm256_permutevar8x32_ps(ya, _mm256_add_epi32(by_block, _mm256_set1_epi32(1)));
            accm = _mm256_add_ps(accm, _mm256_mul_ps(stored_min ? halves8(x, bytes, 2) : dw, ys));
        }
        // The pair's activations: [b 0…15 | b+1 0…15], [b 16…31 | b+1 16…31].
        __m256i y0 = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b));
        __m256i y1 = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * b + 32));
        __m256i p[4];
        for (int r = 0; r < 4; r++) {  // row r's pair: i32 lanes 0–3 block b, 4–7 block b + 1
            pair_quants q = load_pair_avx2(kind, x[r], x[r] + bytes);
            if (kind == SQ_IQ4_NL) {
                p[r] = _mm256_add_epi32(dot_u8i8(_mm256_sign_epi8(q.lo, q.lo), _mm256_sign_epi8(y0, q.lo)),
                                        dot_u8i8(_mm256_sign_epi8(q.hi, q.hi), _mm256_sign_epi8(y1, q.hi)));
            } else {  // |pair sums| ≤ 31·127·2: the two add without leaving i16
                __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(q.lo, y0), _mm256_maddubs_epi16(q.hi, y1));
                p[r] = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
            }
        }
        // [r0 b, r1 b, r2 b, r3 b | r0 b+1, r1 b+1, r2 b+1, r3 b+1], exact.
        __m256i sums = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
        acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums), acc);
    }
    float sums[8], mins[8];
    _mm256_storeu_ps(sums, acc);
    _mm256_storeu_ps(mins, accm);
    for (int r = 0; r < 4; r++) {
        // An odd last block (its activations in order) joins the same sums, so that as in
        // the reference the block terms and the minimum terms meet in one final addition.
        __m256 last = _mm256_setzero_ps();
        __m128 last_m = _mm_setzero_ps();
        if (b < nb) block_step_avx2(kind, 1, b, 0, w + r * stride, a, &last, &last_m);
        float sum = sums[r] + sums[4 + r] + sq_hsum256(last);
        if (sq_has_min(kind)) {
            float summ = min_factor * (mins[r] + mins[4 + r]) + _mm_cvtss_f32(_mm_movehdup_ps(last_m));
            sum += summ;
        }
        out[r] = sum;
    }
}

#define SQ_AVX2_DOT4(name, kind)                                                                      \
    SQ_AVX2 static void name##_avx2_4(size_t nb, const uint8_t *w, size_t stride, const sq_act *a, float *out) { \
        dot4_legacy_avx2(kind, nb, w, stride, a, out);                                                \
    }
SQ_AVX2_DOT4(dot_q4_0, SQ_Q4_0)
SQ_AVX2_DOT4(dot_q4_1, SQ_Q4_1)
SQ_AVX2_DOT4(dot_q5_0, SQ_Q5_0)
SQ_AVX2_DOT4(dot_q5_1, SQ_Q5_1)
SQ_AVX2_DOT4(dot_iq4_nl, SQ_IQ4_NL)

// Not Q8_0: its four-row kernel ran 10% faster from cache but streamed from memory at
// 10–20 GB/s against the single-row kernel's 17–30 (1–2 threads, Zen 3), whatever the
// prefetch distance; the nibble kinds gained 25–40% from cache and streamed no slower.
void sq_register_avx2_4(sq_dot4_fn t[SQ_TYPE_LIMIT]) {
    t[SQ_Q4_0] = dot_q4_0_avx2_4;
    t[SQ_Q4_1] = dot_q4_1_avx2_4;
    t[SQ_Q5_0] = dot_q5_0_avx2_4;
    t[SQ_Q5_1] = dot_q5_1_avx2_4;
    t[SQ_IQ4_NL] = dot_iq4_nl_avx2_4;
    sq_register_avx2_kquants_4(t);
}

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
void sq_register_avx2_4(sq_dot4_fn t[SQ_TYPE_LIMIT]) { (void)t; }
#endif
