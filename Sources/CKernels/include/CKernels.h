#ifndef SWIFTQUANT_CKERNELS_H
#define SWIFTQUANT_CKERNELS_H
#include <stdint.h>
#include <stddef.h>

/// Which SIMD level the running CPU supports: 0 scalar, 1 AVX2 (with FMA and F16C),
/// 2 AVX-512 VNNI (with BW and VL), 3 NEON.
int sq_cpu_level(void);

/// Atomically adds `v` to `*counter` and returns the old value (relaxed order): a work
/// counter threads take chunk indices from.
size_t sq_fetch_add(size_t *counter, size_t v);

/// Returns the C heap's free pages to the system (glibc's malloc_trim; nothing elsewhere).
void sq_release_free_heap(void);

/// Reads `bytes` bytes at `p` as fast as this CPU can (wide loads, independent
/// accumulators) and returns their XOR folded to 64 bits: the memory-bandwidth probe of
/// `swiftquant bench`, in C so that the probe is limited by memory, not by the loop.
uint64_t sq_read_bytes(const void *p, size_t bytes);

/// Calls `fn(ctx, i)` for every `i` in `0..<n` on up to `threads` threads: the caller and
/// `threads − 1` workers of a process-wide pool. Each thread takes its own contiguous run
/// of indices in order, then the back half of what another has left, and so on.
/// Workers spin for a short while after a loop, so back-to-back short loops (generation's
/// matrix-vector products) start without a wake-up. One loop runs at a time; a call made
/// while another is running (from another thread, or from inside `fn`) runs serially on
/// the caller. Returns when every `i` is done.
void sq_parallel_for(size_t n, int threads, void (*fn)(void *ctx, size_t i), void *ctx);

/// `gate[i] = silu(gate[i]) · up[i]` (SwiGLU) for i in 0..<n; AVX2 computes exp to within
/// 2 ulp of libm's.
void sq_swiglu(float *gate, const float *up, size_t n);

/// Floats of scratch `sq_attention_decode` needs for `visible` positions.
size_t sq_attention_scratch_floats(size_t visible, int heads, int head_dim, int threads);

/// Causal attention of one query row (`heads × head_dim` floats at `q`) over positions
/// `0..<visible` of a key/value cache whose rows (`kv_heads × head_dim` floats each) are
/// `kv_stride` floats apart; query head h reads kv head h / (heads / kv_heads). Writes
/// `heads × head_dim` floats to `out`: per head, softmax(scale · q·k) · v. The positions
/// are split over up to `threads` threads of the pool (`sq_parallel_for`) and the parts
/// merged exactly as one softmax; `scratch` holds `sq_attention_scratch_floats` floats.
void sq_attention_decode(const float *q, const float *keys, const float *values, size_t kv_stride, size_t visible,
                         int heads, int kv_heads, int head_dim, float scale, float *out, float *scratch, int threads);

/// Dot product of two int8 vectors of length n (scalar reference).
int32_t sq_dot_i8_ref(const int8_t *a, const int8_t *b, size_t n);

// MARK: Quantized dot products (weights in a GGML block format × 8-bit activations)
//
// A weight row stays in its GGML block format (read straight from a memory-mapped GGUF);
// the activation row is quantized on the fly to 8 bits in one of two layouts, chosen by
// the weight type (`sq_qdot_act_block`):
//
//   32-wide (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL), nb = n / 32 blocks:
//       offset  size     field
//            0  n        qs  int8 quants, −127…127
//            n  8·nb     ds  per block, two f32: the scale d (x ≈ d × q), then
//                            s = d × Σ qs (the kinds with an offset or minimum need it)
//
//     For Q8_0 `qs` is in order. For the nibble kinds (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL)
//     blocks 2p and 2p + 1 share 64 bytes as [2p: 0…15][2p+1: 0…15][2p: 16…31]
//     [2p+1: 16…31], the order their weights' low and high nibbles come out of two
//     blocks loaded side by side; an odd last block is in order. `sq_qdot_act_position`
//     says where value i sits.
//
//   256-wide (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS), nb = n / 256 blocks:
//       offset  size     field
//            0  n        qs     int8 quants, −127…127
//            n  4·nb     d      f32 scale of each block
//       n+4·nb  32·nb    bsums  int16 Σ qs over each group of 16
//
// The activation buffer should be 64-byte aligned (it works at any alignment, slower).
// Every kernel computes, per block, an exact integer sum of weight quants × activation
// quants and combines blocks in f32, so levels differ only by f32 rounding order.

/// 1 if `ggml_type` (a GGML type id) has a quantized dot-product kernel, else 0.
int sq_qdot_supported(uint32_t ggml_type);

/// Width of an activation block for `ggml_type`: 32 or 256 (0 if unsupported).
int sq_qdot_act_block(uint32_t ggml_type);

/// Bytes of an activation row of `n` values for `ggml_type` (n a multiple of the block).
size_t sq_qdot_act_bytes(uint32_t ggml_type, size_t n);

/// Byte offset within `qs` of activation value `i` (of `n`) for `ggml_type`.
size_t sq_qdot_act_position(uint32_t ggml_type, size_t n, size_t i);

/// Quantizes `n` floats `x` into the activation layout `ggml_type` needs, at `act`
/// (`sq_qdot_act_bytes` bytes). Rounds to nearest-even, scale = max|x| / 127 per block.
void sq_qdot_quantize(uint32_t ggml_type, const float *x, size_t n, void *act);

/// `out[r] = Σ_i W[r,i] · x[i]` for `rows` weight rows of `n` values each, the first at
/// `w` and the next every `row_stride` bytes, with `act` from `sq_qdot_quantize`. Uses
/// the best kernel for this CPU, chosen once at startup.
void sq_qdot_rows(uint32_t ggml_type, size_t n, const void *w, size_t row_stride, size_t rows,
                  const void *act, float *out);

/// Every weight row against several activation rows: `out[a·out_stride + r] = Σ_i W[r,i] ·
/// x_a[i]` for r < `rows` and a < `nact`, activation row a at `act + a·act_stride` bytes.
/// Each weight block is unpacked once per group of four activation rows. Keep `rows` to a
/// few dozen per call (a chunk that stays in cache); the results equal `sq_qdot_rows`'s
/// up to f32 rounding.
void sq_qdot_gemm(uint32_t ggml_type, size_t n, const void *w, size_t row_stride, size_t rows,
                  const void *act, size_t act_stride, size_t nact, float *out, size_t out_stride);

/// One `sq_qdot_gemm` call of `sq_qdot_run` (its `n` and `nact` are the run's).
typedef struct {
    uint32_t type;
    const void *weights;
    size_t row_stride, rows;
    const void *act;
    size_t act_stride;
    float *out;
    size_t out_stride;
} sq_qdot_call;

/// Runs `calls[starts[p]..<starts[p + 1]]` for every piece p in `0..<pieces` on up to
/// `threads` threads of the pool (`sq_parallel_for`): generation's fused projections, with
/// no per-piece work outside C.
void sq_qdot_run(const sq_qdot_call *calls, const size_t *starts, size_t pieces, size_t n, size_t nact, int threads);

/// As `sq_qdot_gemm` with the kernels of one `level`; returns the level used or −1, as
/// `sq_qdot_rows_level`. For tests.
int sq_qdot_gemm_level(int level, uint32_t ggml_type, size_t n, const void *w, size_t row_stride, size_t rows,
                       const void *act, size_t act_stride, size_t nact, float *out, size_t out_stride);

/// As `sq_qdot_rows` with the kernel of one `level` (see `sq_cpu_level`); a level without
/// a kernel of its own for the type uses the next lower one. Returns the level actually
/// used, or −1 if the CPU lacks `level` or the type has no kernel. For tests.
int sq_qdot_rows_level(int level, uint32_t ggml_type, size_t n, const void *w, size_t row_stride,
                       size_t rows, const void *act, float *out);

/// The level `sq_qdot_rows` uses for `ggml_type` on this CPU, or −1 if unsupported.
int sq_qdot_level(uint32_t ggml_type);

#include "CKernels_s8.h"

#endif
