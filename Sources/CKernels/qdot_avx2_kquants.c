// AVX2 kernels for the 256-wide kinds (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS).
//
// Within a super-block each run of 32 quants is unpacked to bytes and multiplied with
// `maddubs`; the i16 pair sums are then weighted by the group scales with `madd`, so one
// i32 vector collects Σ scale · Σ q·a for the whole block (at most 256·63·127·128 < 2³¹).
// Offsets (Q3_K's −4, Q6_K's −32) and minimums use the activation's per-16 sums.
#include "qdot_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "qdot_x86.h"

// i16 vector: `lo` in the first eight lanes (bytes 0…15 of a run), `hi` in the last eight.
SQ_AVX2 static inline __m256i two_scales(int lo, int hi) {
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

// Bits `shift`…`shift + width − 1` of every byte (shift ≤ 7), in the low bits.
SQ_AVX2 static inline __m256i bits_k(__m256i v, int shift, int mask) {
    return _mm256_and_si256(_mm256_srli_epi16(v, shift), _mm256_set1_epi8((char)mask));
}

// Subtracts `c` from lane 0 (the block's integer correction).
SQ_AVX2 static inline __m256i sub_lane0(__m256i v, int32_t c) {
    return _mm256_sub_epi32(v, _mm256_setr_epi32(c, 0, 0, 0, 0, 0, 0, 0));
}

SQ_AVX2 static float dot_q2_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    const int16_t *bsums = (const int16_t *)a->aux;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 84 * b;
        const int8_t *y = a->qs + 256 * b;
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x + 16 + 32 * h));
            for (int s = 0; s < 4; s++) {
                int g = 8 * h + 2 * s;
                __m256i p = _mm256_maddubs_epi16(bits_k(q, 2 * s, 3),
                                                 _mm256_loadu_si256((const __m256i *)(y + 128 * h + 32 * s)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, two_scales(x[g] & 0x0F, x[g + 1] & 0x0F)));
            }
        }
        int32_t msum = 0;
        for (int g = 0; g < 16; g++) msum += (x[g] >> 4) * bsums[16 * b + g];
        float da = a->d[b];
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x + 80) * da), _mm256_cvtepi32_ps(isum), acc);
        summ -= (sq_half_x86(x + 82) * da) * (float)msum;
    }
    return sq_hsum256(acc) + summ;
}

SQ_AVX2 static float dot_q3_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    const int16_t *bsums = (const int16_t *)a->aux;
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 110 * b;
        const int8_t *y = a->qs + 256 * b;
        int8_t sc[16];
        sq_q3k_scales(x + 96, sc);
        __m256i hm = _mm256_loadu_si256((const __m256i *)x), isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(x + 32 + 32 * h));
            for (int s = 0; s < 4; s++) {
                int g = 8 * h + 2 * s;
                __m256i v = _mm256_or_si256(bits_k(q, 2 * s, 3), _mm256_slli_epi16(bits_k(hm, 4 * h + s, 1), 2));
                __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)(y + 128 * h + 32 * s)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, two_scales(sc[g], sc[g + 1])));
            }
        }
        int32_t corr = 0;
        for (int g = 0; g < 16; g++) corr += sc[g] * bsums[16 * b + g];
        isum = sub_lane0(isum, 4 * corr);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x + 108) * a->d[b]), _mm256_cvtepi32_ps(isum), acc);
    }
    return sq_hsum256(acc);
}

SQ_AVX2 static inline __attribute__((always_inline)) float dot_q45_k_avx2(size_t nb, const uint8_t *w, const sq_act *a, int five) {
    const int16_t *bsums = (const int16_t *)a->aux;
    const size_t bytes = five ? 176 : 144;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + bytes * b, *qs = x + (five ? 48 : 16);
        const int8_t *y = a->qs + 256 * b;
        const int16_t *bs = bsums + 16 * b;
        int sc[8], m[8];
        int32_t msum = 0;
        for (int g = 0; g < 8; g++) {
            sq_scale_min_k4(x + 4, g, &sc[g], &m[g]);
            msum += m[g] * (bs[2 * g] + bs[2 * g + 1]);
        }
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(x + 16)) : _mm256_setzero_si256();
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = bits_k(q, 0, 0x0F), hi = bits_k(q, 4, 0x0F);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(bits_k(qh, 2 * c, 1), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(bits_k(qh, 2 * c + 1, 1), 4));
            }
            __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y + 64 * c)));
            __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y + 64 * c + 32)));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p0, _mm256_set1_epi16((short)sc[2 * c])));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p1, _mm256_set1_epi16((short)sc[2 * c + 1])));
        }
        float da = a->d[b];
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x) * da), _mm256_cvtepi32_ps(isum), acc);
        summ -= (sq_half_x86(x + 2) * da) * (float)msum;
    }
    return sq_hsum256(acc) + summ;
}
SQ_AVX2 static float dot_q4_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_k_avx2(nb, w, a, 0); }
SQ_AVX2 static float dot_q5_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) { return dot_q45_k_avx2(nb, w, a, 1); }

SQ_AVX2 static float dot_q6_k_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    const int16_t *bsums = (const int16_t *)a->aux;
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 210 * b;
        const int8_t *y = a->qs + 256 * b, *sc = (const int8_t *)(x + 192);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i ql[2] = { _mm256_loadu_si256((const __m256i *)(x + 64 * h)),
                              _mm256_loadu_si256((const __m256i *)(x + 64 * h + 32)) };
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x + 128 + 32 * h));
            for (int s = 0; s < 4; s++) {
                int g = 8 * h + 2 * s;
                __m256i v = _mm256_or_si256(bits_k(ql[s % 2], 4 * (s / 2), 0x0F),
                                            _mm256_slli_epi16(bits_k(qh, 2 * s, 3), 4));
                __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)(y + 128 * h + 32 * s)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, two_scales(sc[g], sc[g + 1])));
            }
        }
        int32_t corr = 0;
        for (int g = 0; g < 16; g++) corr += sc[g] * bsums[16 * b + g];
        isum = sub_lane0(isum, 32 * corr);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x + 208) * a->d[b]), _mm256_cvtepi32_ps(isum), acc);
    }
    return sq_hsum256(acc);
}

SQ_AVX2 static float dot_iq4_xs_avx2(size_t nb, const uint8_t *w, const sq_act *a) {
    const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sq_iq4_values));
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x = w + 136 * b;
        const int8_t *y = a->qs + 256 * b;
        int sc[8];
        sq_iq4xs_scales(x, sc);
        __m256i isum = _mm256_setzero_si256();
        for (int g = 0; g < 8; g++) {
            __m128i q = _mm_loadu_si128((const __m128i *)(x + 8 + 16 * g));
            __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low4);
            __m256i v = _mm256_shuffle_epi8(book, idx);
            __m256i yg = _mm256_loadu_si256((const __m256i *)(y + 32 * g));
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(yg, v));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_set1_epi16((short)sc[g])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sq_half_x86(x) * a->d[b]), _mm256_cvtepi32_ps(isum), acc);
    }
    return sq_hsum256(acc);
}

// MARK: Four weight rows, one activation row (generation)
//
// The single-row kernels above are limited by instructions, not by memory: per block they
// unpack the scales one at a time in scalar code and broadcast each to a vector. Here four
// rows share every activation load (256 quants, the block's 16 `bsums`) and their scales
// are unpacked with a few vector instructions for all four at once. Each row's block sum
// Σ q·a is exact in i32 whatever the lane order, so the four sums are reduced to one
// vector [row 0, row 1, row 2, row 3] per block and combined in f32 exactly as the scalar
// reference does: sumf += (d · d_a) · isum, summ −= (dmin · d_a) · msum, one row per lane
// (so, unlike the single-row kernels, they equal the reference bit for bit on any data).

// i16 pair sums of a row's `maddubs` products times its group scale, summed into i32
// lanes: `scales` holds four i16 scales, each twice (one per dword), in both 128-bit
// halves; `pick` chooses the dword (0…3), so every lane multiplies by the same scale.
// (A switch, as `pshufd` takes its pattern as an immediate; unrolled loops fold it.)
SQ_AVX2 static inline __m256i pick_scale(__m256i scales, int pick) {
    switch (pick) {
    case 0: return _mm256_shuffle_epi32(scales, 0x00);
    case 1: return _mm256_shuffle_epi32(scales, 0x55);
    case 2: return _mm256_shuffle_epi32(scales, 0xAA);
    default: return _mm256_shuffle_epi32(scales, 0xFF);
    }
}

// Four rows' i32 vectors summed lane-wise into [Σ v0, Σ v1, Σ v2, Σ v3].
SQ_AVX2 static inline __m128i hsum4_epi32(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

// Bit `k` (0…7) of every byte moved to bit `to` (4 for Q5_K's fifth bit), other bits 0.
// The 16-bit shifts carry bits across bytes only into positions the mask clears.
SQ_AVX2 static inline __m256i bit_to(__m256i v, int k, int to) {
    __m256i s = k < to ? _mm256_slli_epi16(v, to - k) : k > to ? _mm256_srli_epi16(v, k - to) : v;
    return _mm256_and_si256(s, _mm256_set1_epi8((char)(1 << to)));
}

// Prefetching. The four rows of a call lie `stride` apart, so the rows of the group
// SQ_PF_BYTES or more ahead (`ahead`, see `sq_pf_groups`) are one run of 4·stride bytes,
// and each block step touches the next 4·stride/nb of them (`step`, rounded up): one
// sequential stream, read ahead at the rate the four rows are consumed. Touching instead
// each row's own lines in that group (four strided streams, as the nibble kinds do)
// streamed Q4_K/Q6_K from memory at 19–22 GB/s with two threads; this reaches 30–33,
// about what plain reads get; with no prefetching it is 10–12.
SQ_AVX2 static inline void prefetch_run(const uint8_t *from, size_t bytes) {
    uintptr_t end = (uintptr_t)from + bytes;
    for (uintptr_t p = (uintptr_t)from & ~(uintptr_t)63; p < end; p += 64) _mm_prefetch((const char *)p, _MM_HINT_T0);
}

// Keeps a stack table in memory: without it the compiler would turn the table's broadcast
// loads back into shuffles of registers.
#define SQ_IN_MEMORY(p) __asm__ volatile("" : : "r"(p) : "memory")

// Q4_K and Q5_K. The 12-byte scale field as three little-endian words u0 (bytes 0–3),
// u1 (4–7), u2 (8–11) gives each row's eight 6-bit scales and minimums bytewise:
//     scales 0–3 = u0 & 0x3F…,  scales 4–7 = (u2 & 0x0F…) | ((u0 >> 2) & 0x30…)
//     mins   0–3 = u1 & 0x3F…,  mins   4–7 = ((u2 >> 4) & 0x0F…) | ((u1 >> 2) & 0x30…)
// (the top two bits of bytes 0–3 are the high bits of scales 4–7, of bytes 4–7 those of
// minimums 4–7; the 32-bit shifts move bits within each byte under the masks); with one
// row per dword, four rows take a handful of instructions.
SQ_AVX2 static inline __attribute__((always_inline)) void dot4_q45_k_avx2(size_t nb, const uint8_t *w, size_t stride, const sq_act *a,
                                                 float *out, int five) {
    const size_t bytes = five ? 176 : 144;
    const int16_t *bsums = (const int16_t *)a->aux;
    const __m128i m3f = _mm_set1_epi8(0x3F), m0f = _mm_set1_epi8(0x0F), m30 = _mm_set1_epi8(0x30);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    // Lanes [sumf 0, summ 0, sumf 1, summ 1, …]: the reference's two sums of each row.
    __m256 acc = _mm256_setzero_ps();
    const size_t ahead = sq_pf_groups(4 * stride) * 4 * stride, step = (4 * stride + nb - 1) / nb;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x[4] = { w + bytes * b, w + stride + bytes * b, w + 2 * stride + bytes * b,
                                w + 3 * stride + bytes * b };
        prefetch_run(w + ahead + step * b, step);
        // Scales and minimums of the four rows, dword r = row r.
        __m128i u0 = _mm_setr_epi32((int)sq_u32(x[0] + 4), (int)sq_u32(x[1] + 4), (int)sq_u32(x[2] + 4), (int)sq_u32(x[3] + 4));
        __m128i u1 = _mm_setr_epi32((int)sq_u32(x[0] + 8), (int)sq_u32(x[1] + 8), (int)sq_u32(x[2] + 8), (int)sq_u32(x[3] + 8));
        __m128i u2 = _mm_setr_epi32((int)sq_u32(x[0] + 12), (int)sq_u32(x[1] + 12), (int)sq_u32(x[2] + 12), (int)sq_u32(x[3] + 12));
        __m128i sc_lo = _mm_and_si128(u0, m3f);
        __m128i sc_hi = _mm_or_si128(_mm_and_si128(u2, m0f), _mm_and_si128(_mm_srli_epi32(u0, 2), m30));
        __m128i mn_lo = _mm_and_si128(u1, m3f);
        __m128i mn_hi = _mm_or_si128(_mm_and_si128(_mm_srli_epi32(u2, 4), m0f), _mm_and_si128(_mm_srli_epi32(u1, 2), m30));
        // msum = Σ_g min_g · (bsums 2g + bsums 2g+1): pair sums of the bsums (|·| ≤ 4096,
        // i16), then [min 0…3 of rows 0, 1 | rows 2, 3] against pairs 0…3, likewise 4…7.
        __m256i bs = _mm256_loadu_si256((const __m256i *)(bsums + 16 * b));
        __m256i bp = _mm256_madd_epi16(bs, _mm256_set1_epi16(1));  // [p0 p1 p2 p3 | p4 p5 p6 p7]
        bp = _mm256_packs_epi32(bp, bp);                            // i16 [p0…p3 p0…p3 | p4…p7 p4…p7]
        __m256i bp_lo = _mm256_permute2x128_si256(bp, bp, 0x00), bp_hi = _mm256_permute2x128_si256(bp, bp, 0x11);
        __m256i ms = _mm256_add_epi32(_mm256_madd_epi16(_mm256_cvtepu8_epi16(mn_lo), bp_lo),
                                      _mm256_madd_epi16(_mm256_cvtepu8_epi16(mn_hi), bp_hi));
        // [r0 r0 r1 r1 | r2 r2 r3 r3] → [msum 0, msum 1, msum 2, msum 3]
        __m128i msum = _mm_hadd_epi32(_mm256_castsi256_si128(ms), _mm256_extracti128_si256(ms, 1));
        // The 32 scales as i32 (s | s << 16, the i16 scale twice), [scales 0–3 | 4–7][odd
        // row][row / 2][scale % 4]: each group's scale vector is then a broadcast load, a
        // load-port instruction, where a shuffle per group left Q5_K short of registers
        // (Q5_K 14 → 19.5 GB/s from cache; Q4_K within 1%).
        int32_t slots[32] __attribute__((aligned(32)));
        __m256i zl = _mm256_cvtepu8_epi16(sc_lo), zh = _mm256_cvtepu8_epi16(sc_hi);
        _mm256_store_si256((__m256i *)slots, _mm256_unpacklo_epi16(zl, zl));
        _mm256_store_si256((__m256i *)(slots + 8), _mm256_unpackhi_epi16(zl, zl));
        _mm256_store_si256((__m256i *)(slots + 16), _mm256_unpacklo_epi16(zh, zh));
        _mm256_store_si256((__m256i *)(slots + 24), _mm256_unpackhi_epi16(zh, zh));
        SQ_IN_MEMORY(slots);
        const int8_t *y = a->qs + 256 * b;
        __m256i qh[4], isum[4];
        for (int r = 0; r < 4; r++) {
            qh[r] = five ? _mm256_loadu_si256((const __m256i *)(x[r] + 16)) : _mm256_setzero_si256();
            isum[r] = _mm256_setzero_si256();
        }
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {  // groups 2c (low nibbles) and 2c + 1 (high nibbles)
            __m256i y0 = _mm256_loadu_si256((const __m256i *)(y + 64 * c));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(y + 64 * c + 32));
            for (int r = 0; r < 4; r++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(x[r] + (five ? 48 : 16) + 32 * c));
                __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
                if (five) {  // qh[r] is shifted down 2c: bits 0 and 1 are groups 2c and 2c + 1
                    lo = _mm256_or_si256(lo, bit_to(qh[r], 0, 4));
                    hi = _mm256_or_si256(hi, bit_to(qh[r], 1, 4));
                    qh[r] = _mm256_srli_epi16(qh[r], 2);
                }
                const int32_t *sr = slots + 16 * (c / 2) + 8 * (r % 2) + 4 * (r / 2) + 2 * (c % 2);
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi32(sr[0]));
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi32(sr[1]));
                isum[r] = _mm256_add_epi32(isum[r], _mm256_add_epi32(p0, p1));
            }
        }
        __m128i is4 = hsum4_epi32(isum[0], isum[1], isum[2], isum[3]);
        __m128i neg_msum = _mm_sub_epi32(_mm_setzero_si128(), msum);
        // [isum 0, −msum 0, isum 1, −msum 1, …]: summ −= t is summ + (−t), and
        // (dmin·d_a)·(float)(−msum) is exactly −((dmin·d_a)·(float)msum).
        __m256 terms = _mm256_cvtepi32_ps(_mm256_set_m128i(_mm_unpackhi_epi32(is4, neg_msum), _mm_unpacklo_epi32(is4, neg_msum)));
        // [d 0, dmin 0, d 1, dmin 1, …]: each row's first four bytes.
        __m256 dd = _mm256_cvtph_ps(_mm_setr_epi32((int)sq_u32(x[0]), (int)sq_u32(x[1]), (int)sq_u32(x[2]), (int)sq_u32(x[3])));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(dd, _mm256_set1_ps(a->d[b])), terms));
    }
    float s[8];
    _mm256_storeu_ps(s, acc);
    for (int r = 0; r < 4; r++) out[r] = s[2 * r] + s[2 * r + 1];
}
SQ_AVX2 static void dot_q4_k_avx2_4(size_t nb, const uint8_t *w, size_t stride, const sq_act *a, float *out) {
    dot4_q45_k_avx2(nb, w, stride, a, out, 0);
}
SQ_AVX2 static void dot_q5_k_avx2_4(size_t nb, const uint8_t *w, size_t stride, const sq_act *a, float *out) {
    dot4_q45_k_avx2(nb, w, stride, a, out, 1);
}

// Q6_K: the 16 signed scales of a row as i16, arranged so that one `pshufd` gives the
// vector [scale g ×8 | scale g+1 ×8] the single-row kernel multiplies a run by.
SQ_AVX2 static void dot_q6_k_avx2_4(size_t nb, const uint8_t *w, size_t stride, const sq_act *a, float *out) {
    const int16_t *bsums = (const int16_t *)a->aux;
    const __m256i m0f = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    // Half h's scales, bytes: [8h, 8h, 8h+2, 8h+2, …, 8h+6 | 8h+1, 8h+1, 8h+3, …, 8h+7]
    // (widened to i16 below, low eight bytes to the low 128 bits).
    const __m128i order[2] = {
        _mm_setr_epi8(0, 0, 2, 2, 4, 4, 6, 6, 1, 1, 3, 3, 5, 5, 7, 7),
        _mm_setr_epi8(8, 8, 10, 10, 12, 12, 14, 14, 9, 9, 11, 11, 13, 13, 15, 15),
    };
    __m128 acc = _mm_setzero_ps();  // row r's sumf in lane r
    const size_t ahead = sq_pf_groups(4 * stride) * 4 * stride, step = (4 * stride + nb - 1) / nb;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *x[4] = { w + 210 * b, w + stride + 210 * b, w + 2 * stride + 210 * b,
                                w + 3 * stride + 210 * b };
        prefetch_run(w + ahead + step * b, step);
        const int8_t *y = a->qs + 256 * b;
        __m256i bs = _mm256_loadu_si256((const __m256i *)(bsums + 16 * b));
        __m256i isum[4], sc[4][2];
        for (int r = 0; r < 4; r++) {
            __m128i s8 = _mm_loadu_si128((const __m128i *)(x[r] + 192));
            // The offset: Σ_g scale_g · 32 · bsums_g, taken off the row's sum up front.
            __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(s8), bs);
            isum[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
            sc[r][0] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, order[0]));
            sc[r][1] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, order[1]));
        }
#pragma clang loop unroll(full)
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 4; s++) {  // run 128h + 32s: groups 8h + 2s (bytes 0–15), 8h + 2s + 1
                __m256i ya = _mm256_loadu_si256((const __m256i *)(y + 128 * h + 32 * s));
                for (int r = 0; r < 4; r++) {
                    // Low four bits: nibble s/2 of ql[64h + 32(s%2) …]; high two: bits 2s, 2s+1
                    // of qh[32h …], moved to bits 4–5 with one shift and a mask.
                    __m256i ql = _mm256_loadu_si256((const __m256i *)(x[r] + 64 * h + 32 * (s % 2)));
                    __m256i qh = _mm256_loadu_si256((const __m256i *)(x[r] + 128 + 32 * h));
                    __m256i lo = _mm256_and_si256(s < 2 ? ql : _mm256_srli_epi16(ql, 4), m0f);
                    __m256i hb = s < 2 ? _mm256_slli_epi16(qh, 4 - 2 * s) : s == 2 ? qh : _mm256_srli_epi16(qh, 2);
                    __m256i v = _mm256_or_si256(lo, _mm256_and_si256(hb, m30));
                    __m256i p = _mm256_maddubs_epi16(v, ya);
                    isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(p, pick_scale(sc[r][h], s)));
                }
            }
        }
        __m128i is4 = hsum4_epi32(isum[0], isum[1], isum[2], isum[3]);
        __m128i dh = _mm_setr_epi16((short)sq_u16(x[0] + 208), (short)sq_u16(x[1] + 208), (short)sq_u16(x[2] + 208),
                                    (short)sq_u16(x[3] + 208), 0, 0, 0, 0);
        __m128 d = _mm_mul_ps(_mm_cvtph_ps(dh), _mm_set1_ps(a->d[b]));
        acc = _mm_add_ps(acc, _mm_mul_ps(d, _mm_cvtepi32_ps(is4)));
    }
    _mm_storeu_ps(out, acc);
}

void sq_register_avx2_kquants_4(sq_dot4_fn t[SQ_TYPE_LIMIT]) {
    t[SQ_Q4_K] = dot_q4_k_avx2_4;
    t[SQ_Q5_K] = dot_q5_k_avx2_4;
    t[SQ_Q6_K] = dot_q6_k_avx2_4;
}

void sq_register_avx2_kquants(sq_dot_fn t[SQ_TYPE_LIMIT]) {
    t[SQ_Q2_K] = dot_q2_k_avx2;
    t[SQ_Q3_K] = dot_q3_k_avx2;
    t[SQ_Q4_K] = dot_q4_k_avx2;
    t[SQ_Q5_K] = dot_q5_k_avx2;
    t[SQ_Q6_K] = dot_q6_k_avx2;
    t[SQ_IQ4_XS] = dot_iq4_xs_avx2;
}

#else
void sq_register_avx2_kquants(sq_dot_fn t[SQ_TYPE_LIMIT]) { (void)t; }
void sq_register_avx2_kquants_4(sq_dot4_fn t[SQ_TYPE_LIMIT]) { (void)t; }
#endif
