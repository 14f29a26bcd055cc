#ifndef SWIFTQUANT_CKERNELS_S8_H
#define SWIFTQUANT_CKERNELS_S8_H
#include <stdint.h>
#include <stddef.h>

// MARK: int8 × int8 → int32 matrix products (W8A8)
//
//     y[i, j] = (f32) acc[i, j] · (sa[i] · sw[j]) + bias[j],   acc[i, j] = Σ_k A[i, k] · W[j, k]
//
// A [m, k]: int8 activations, row-major, one scale per row (token) `sa`.
// W [n, k]: int8 weights, one scale per output channel `sw`, packed once by `sq_s8_pack`.
// `acc` is an exact int32 sum on every kernel level; the f32 epilogue is the same three
// roundings everywhere (sa·sw, then ·acc, then +bias, never fused), so every level gives
// bit-identical outputs.
//
// Value range: A and W are symmetric int8, −127…127. −128 is outside the contract (the
// quantizers below never produce it): the AVX2 kernel multiplies through
// `sign(a, w)`, which cannot negate −128. With |values| ≤ 127, acc cannot overflow for
// k ≤ 65536 (the VNNI kernel's offset sum 255·127·k stays below 2³¹ too).
//
// Packed weight layout (`sq_s8_packed_bytes`), P = ⌈n/16⌉ panels, G = ⌈k/4⌉ groups:
//       offset      size      field
//            0      64·G·P    panels: panel p holds rows 16p…16p+15; its group g is 64
//                             bytes, W[16p + c, 4g + t] at byte 64g + 4c + t (columns
//                             past n and values past k are 0)
//       64·G·P      64·P      int32 Σ_k W[j, k] per row j (the VNNI kernel's offset
//                             correction), 0 past n
//     + 64·P        64·P      f32 sw[j], 0 past n
//     + 128·P       64·P      f32 bias[j] (0 without a bias), 0 past n
// One panel group is one 512-bit register: 16 output channels × 4 consecutive k, the
// operand shape of `vpdpbusd` and `sdot` with one broadcast 4-byte activation group.
//
// Levels (`sq_s8_gemm_level`): 0 scalar reference, 1 AVX2, 2 AVX-512 VNNI, 3 NEON
// (widening multiplies), 4 NEON with the dot-product extension (`sdot`).

/// Bytes of a packed weight matrix of `n` rows (output channels) × `k` columns.
size_t sq_s8_packed_bytes(size_t n, size_t k);

/// Packs the int8 weight `w` (`n` rows of `k` values, row `j` at `w + j·ldw`) with its
/// per-row scales `scales[0..<n]` and optional `bias[0..<n]` (NULL: none) into `packed`
/// (`sq_s8_packed_bytes(n, k)` bytes, ideally 64-byte aligned).
void sq_s8_pack(const int8_t *w, size_t ldw, size_t n, size_t k, const float *scales, const float *bias,
                void *packed);

/// Row `j` of a packed matrix back as int8 (`k` values into `out`). For tests and inspection.
void sq_s8_unpack_row(const void *packed, size_t n, size_t k, size_t j, int8_t *out);

/// Dynamic symmetric quantization of `m` rows of `k` floats (row `i` at `x + i·ldx`): per
/// row, scale = max|x| / 127 into `scales[i]` and q = x · (127 / max|x|) rounded to nearest
/// even, clamped to −127…127, into `q + i·ldq`. An all-zero row gets scale 0 and zeros; a
/// row containing NaN gets a NaN scale (so its outputs are NaN). Vectorised per level,
/// the same bits on every level.
void sq_s8_quantize_rows(const float *x, size_t ldx, size_t m, size_t k, int8_t *q, size_t ldq, float *scales);

/// Static symmetric quantization with one given `scale` (> 0): q = x · (1 / scale) rounded
/// to nearest even, clamped to −127…127; values beyond 127·scale saturate (NaN gives 127).
void sq_s8_quantize_rows_static(const float *x, size_t ldx, size_t m, size_t k, float scale, int8_t *q,
                                size_t ldq);

/// Either quantizer at one `level`: `scale` < 0 is `sq_s8_quantize_rows` (`scales` gets
/// the row scales), otherwise `sq_s8_quantize_rows_static` (`scales` unused). Returns the
/// level used, or −1 if this CPU lacks it. For tests.
int sq_s8_quantize_rows_level(int level, const float *x, size_t ldx, size_t m, size_t k, float scale, int8_t *q,
                              size_t ldq, float *scales);

/// `y[i, j]` (formula above) for every row i < `m` and output channel `j0 ≤ j < j1`, at
/// `y + i·ldy + j`. A row `i` is `k` int8 values at `a + i·lda` (nothing past them is read);
/// `sa[i]` is its scale; `packed` is `sq_s8_pack`'s output for `n × k`. `j0` must be a
/// multiple of 16 and `j1` a multiple of 16 or `n`. Uses the best level for this CPU,
/// chosen once; callers split work over threads by row and column ranges.
void sq_s8_gemm(const int8_t *a, size_t lda, const float *sa, size_t m, const void *packed, size_t n, size_t k,
                size_t j0, size_t j1, float *y, size_t ldy);

/// As `sq_s8_gemm` at one `level` (see above). Returns the level used, or −1 if this CPU
/// lacks it or the arguments are invalid. For tests.
int sq_s8_gemm_level(int level, const int8_t *a, size_t lda, const float *sa, size_t m, const void *packed,
                     size_t n, size_t k, size_t j0, size_t j1, float *y, size_t ldy);

/// The level `sq_s8_gemm` uses on this CPU.
int sq_s8_level(void);

#endif
