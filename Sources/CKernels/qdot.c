// Activation quantization and the runtime choice of dot-product kernel.
#include <math.h>
#include <pthread.h>
#include "qdot_internal.h"

// Generation streams weight rows from memory once per token. The hardware prefetcher
// alone keeps too few misses in flight for the AVX-512 kernels, which consume a row in
// ~10 ns: touching the bytes 8 KiB ahead of the row being read (past the end of the
// chunk: the next chunk of the same matrix follows it) took one thread from 21 to 28 GB/s
// on Q4_0 and from 27 to 39 GB/s on Q8_0 (SmolLM2's 210 matrices; 2 rows or 4 KiB ahead
// did less, 16–32 KiB no better). Prefetches never fault, so reading past the matrix is safe.
// (SQ_PF_BYTES, in qdot_internal.h; the four-row kernels prefetch inside their loops.)

const int8_t sq_iq4_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static sq_dot_fn tables[SQ_LEVEL_COUNT][SQ_TYPE_LIMIT];
static sq_dot_rows_fn row_tables[SQ_LEVEL_COUNT][SQ_TYPE_LIMIT];
static sq_dot4_fn four_tables[SQ_LEVEL_COUNT][SQ_TYPE_LIMIT];
static int cpu_level;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

// Fills one table per level; each file registers only what its architecture compiles.
static void init_tables(void) {
    cpu_level = sq_cpu_level();
    sq_register_scalar(tables[SQ_LEVEL_SCALAR]);
    sq_register_avx2(tables[SQ_LEVEL_AVX2], row_tables[SQ_LEVEL_AVX2]);
    sq_register_avx2_kquants(tables[SQ_LEVEL_AVX2]);
    sq_register_avx2_4(four_tables[SQ_LEVEL_AVX2]);
    sq_register_avx512(tables[SQ_LEVEL_AVX512], row_tables[SQ_LEVEL_AVX512]);
    sq_register_avx512_gemv(tables[SQ_LEVEL_AVX512]);
    sq_register_neon(tables[SQ_LEVEL_NEON]);
}

// The kernel at `level` for `type`, falling back to lower levels of the same
// architecture (NEON falls back to scalar); NULL if none. Sets *used to the level.
static sq_dot_fn kernel(int level, uint32_t type, int *used) {
    pthread_once(&tables_once, init_tables);
    if (type >= SQ_TYPE_LIMIT) return NULL;
    for (int l = level; l >= 0; l--) {
        if (l == SQ_LEVEL_NEON && level != SQ_LEVEL_NEON) continue;
        if (level == SQ_LEVEL_NEON && l != SQ_LEVEL_NEON && l != SQ_LEVEL_SCALAR) continue;
        if (tables[l][type]) {
            *used = l;
            return tables[l][type];
        }
    }
    return NULL;
}

int sq_qdot_supported(uint32_t type) { return sq_qdot_act_block(type) != 0; }

int sq_qdot_act_block(uint32_t type) {
    switch (type) {
    case SQ_Q4_0: case SQ_Q4_1: case SQ_Q5_0: case SQ_Q5_1: case SQ_Q8_0: case SQ_IQ4_NL: return 32;
    case SQ_Q2_K: case SQ_Q3_K: case SQ_Q4_K: case SQ_Q5_K: case SQ_Q6_K: case SQ_IQ4_XS: return 256;
    default: return 0;
    }
}

size_t sq_qdot_act_bytes(uint32_t type, size_t n) {
    int bs = sq_qdot_act_block(type);
    if (bs == 0) return 0;
    size_t nb = n / (size_t)bs;
    return bs == 32 ? n + 8 * nb : n + 4 * nb + 32 * nb;
}

// The block's scale (max|x| / 127) and quants, rounded to nearest-even. Adding and
// subtracting 1.5·2²³ rounds any |v| < 2²² to an integer in the current (nearest-even)
// mode without a libm call, and vectorises.
static float quantize_block(const float *x, int len, int8_t *q) {
    float amax = 0;
    for (int i = 0; i < len; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    const float magic = 12582912.0f;
    for (int i = 0; i < len; i++) {
        q[i] = (int8_t)(int)((x[i] * id + magic) - magic);
    }
    return d;
}

size_t sq_qdot_act_position(uint32_t type, size_t n, size_t i) {
    if (!sq_paired(type)) return i;
    size_t j = i % 32;
    return sq_paired_offset(n / 32, i / 32, (int)(j / 16)) + j % 16;
}

void sq_qdot_quantize(uint32_t type, const float *x, size_t n, void *act) {
    int bs = sq_qdot_act_block(type);
    if (bs == 0) return;
    size_t nb = n / (size_t)bs;
    int8_t *qs = (int8_t *)act;
    float *d = (float *)((uint8_t *)act + n);
    if (bs == 32) {
        for (size_t b = 0; b < nb; b++) {
            int8_t q[32];
            float scale = quantize_block(x + 32 * b, 32, q);
            int sum = 0;
            for (int i = 0; i < 32; i++) sum += q[i];
            d[2 * b] = scale;
            d[2 * b + 1] = scale * (float)sum;
            if (sq_paired(type)) {
                memcpy((int8_t *)sq_paired_half(qs, nb, b, 0), q, 16);
                memcpy((int8_t *)sq_paired_half(qs, nb, b, 1), q + 16, 16);
            } else {
                memcpy(qs + 32 * b, q, 32);
            }
        }
    } else {
        int16_t *bsums = (int16_t *)(d + nb);
        for (size_t b = 0; b < nb; b++) {
            int8_t *q = qs + 256 * b;
            d[b] = quantize_block(x + 256 * b, 256, q);
            for (int g = 0; g < 16; g++) {
                int sum = 0;
                for (int i = 0; i < 16; i++) sum += q[16 * g + i];
                bsums[16 * b + g] = (int16_t)sum;
            }
        }
    }
}

// The parts of the activation row at `act`.
static sq_act split_act(uint32_t type, size_t n, const void *act) {
    int bs = sq_qdot_act_block(type);
    const float *d = (const float *)((const uint8_t *)act + n);
    sq_act a = { (const int8_t *)act, d, bs == 32 ? NULL : d + n / (size_t)bs };
    return a;
}

// Every weight row against every activation row. Activations go in groups of up to
// SQ_MAX_ROWS (outer loop, so a group stays in L1) and each weight row is unpacked once
// per group; callers pass a few dozen weight rows at a time so they stay in cache too.
static void run_gemm(sq_dot_fn fn, sq_dot_rows_fn rows_fn, sq_dot4_fn four_fn, uint32_t type, size_t n, const void *w,
                     size_t row_stride, size_t rows, const void *act, size_t act_stride, size_t nact,
                     float *out, size_t out_stride) {
    // Weight blocks are as wide as activation blocks for every supported type.
    size_t nb = n / (size_t)sq_qdot_act_block(type);
    if (nact == 1) {  // generation: one activation row, the tightest loop, prefetching ahead
        sq_act a = split_act(type, n, act);
        size_t r = 0;
        if (four_fn) {
            for (; r + 4 <= rows; r += 4) four_fn(nb, (const uint8_t *)w + r * row_stride, row_stride, &a, out + r);
        }
        for (; r < rows; r++) {
            const uint8_t *row = (const uint8_t *)w + r * row_stride;
            for (size_t o = 0; o < row_stride; o += 64) __builtin_prefetch(row + SQ_PF_BYTES + o);
            out[r] = fn(nb, row, &a);
        }
        return;
    }
    for (size_t a0 = 0; a0 < nact; a0 += SQ_MAX_ROWS) {
        int na = nact - a0 < SQ_MAX_ROWS ? (int)(nact - a0) : SQ_MAX_ROWS;
        sq_act acts[SQ_MAX_ROWS];
        for (int j = 0; j < na; j++) acts[j] = split_act(type, n, (const uint8_t *)act + (a0 + (size_t)j) * act_stride);
        for (size_t r = 0; r < rows; r++) {
            const uint8_t *wr = (const uint8_t *)w + r * row_stride;
            float tmp[SQ_MAX_ROWS];
            if (rows_fn && na > 1) {
                rows_fn(nb, wr, acts, na, tmp);
            } else {
                for (int j = 0; j < na; j++) tmp[j] = fn(nb, wr, &acts[j]);
            }
            for (int j = 0; j < na; j++) out[(a0 + (size_t)j) * out_stride + r] = tmp[j];
        }
    }
}

void sq_qdot_rows(uint32_t type, size_t n, const void *w, size_t row_stride, size_t rows,
                  const void *act, float *out) {
    sq_qdot_gemm(type, n, w, row_stride, rows, act, 0, 1, out, 0);
}

void sq_qdot_gemm(uint32_t type, size_t n, const void *w, size_t row_stride, size_t rows,
                  const void *act, size_t act_stride, size_t nact, float *out, size_t out_stride) {
    pthread_once(&tables_once, init_tables);
    int used;
    sq_dot_fn fn = kernel(cpu_level, type, &used);
    if (fn) run_gemm(fn, row_tables[used][type], four_tables[used][type], type, n, w, row_stride, rows, act, act_stride, nact, out, out_stride);
}

int sq_qdot_gemm_level(int level, uint32_t type, size_t n, const void *w, size_t row_stride, size_t rows,
                       const void *act, size_t act_stride, size_t nact, float *out, size_t out_stride) {
    pthread_once(&tables_once, init_tables);
    if (level < 0 || level >= SQ_LEVEL_COUNT) return -1;
    if (level != SQ_LEVEL_SCALAR && (level > cpu_level || (level == SQ_LEVEL_NEON) != (cpu_level == SQ_LEVEL_NEON)))
        return -1;
    int used = -1;
    sq_dot_fn fn = kernel(level, type, &used);
    if (!fn) return -1;
    run_gemm(fn, row_tables[used][type], four_tables[used][type], type, n, w, row_stride, rows, act, act_stride, nact, out, out_stride);
    return used;
}

int sq_qdot_rows_level(int level, uint32_t type, size_t n, const void *w, size_t row_stride, size_t rows,
                       const void *act, float *out) {
    return sq_qdot_gemm_level(level, type, n, w, row_stride, rows, act, 0, 1, out, 0);
}

int sq_qdot_level(uint32_t type) {
    pthread_once(&tables_once, init_tables);
    int used = -1;
    return kernel(cpu_level, type, &used) ? used : -1;
}

typedef struct {
    const sq_qdot_call *calls;
    const size_t *starts;
    size_t n, nact;
} qdot_run_job;

static void run_piece(void *ctx, size_t p) {
    const qdot_run_job *job = (const qdot_run_job *)ctx;
    for (size_t c = job->starts[p]; c < job->starts[p + 1]; c++) {
        const sq_qdot_call *k = &job->calls[c];
        sq_qdot_gemm(k->type, job->n, k->weights, k->row_stride, k->rows, k->act, k->act_stride, job->nact, k->out,
                     k->out_stride);
    }
}

void sq_qdot_run(const sq_qdot_call *calls, const size_t *starts, size_t pieces, size_t n, size_t nact, int threads) {
    qdot_run_job job = { calls, starts, n, nact };
    sq_parallel_for(pieces, threads, run_piece, &job);
}
