// Attention of one query row over a cached key/value history (generation).
//
// The positions are cut into one contiguous part per thread. A part computes, for every
// query head, the scores of its positions, their maximum m, the sum l of exp(score − m)
// and o = Σ exp(score − m)·v; the caller then merges the parts' (m, l, o) with the usual
// rescaling by exp(m_part − m_max), so the result is the softmax over all positions. Each
// thread reads its share of the cache once: for a key row, the dot products of every query
// head of its group are taken while the row is in registers.
//
// AVX2 (with FMA) where the head width is a multiple of 8, portable C otherwise; the two
// differ only in f32 rounding order.
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "CKernels.h"
#include "exp_x86.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SQ_ATT_AVX2 __attribute__((target("avx2,fma")))
#endif

typedef struct {
    const float *q, *keys, *values;
    size_t kv_stride, visible, part_len;
    int heads, kv_heads, head_dim, avx2;
    float scale;
    float *scores;  // heads × visible
    float *partial; // parts × heads × (head_dim + 2): o, then m, l
} attention_job;

static inline float dot_plain(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

#if defined(__x86_64__) || defined(__i386__)
SQ_ATT_AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Scores of positions [lo, hi) for the query heads of kv head `g`.
SQ_ATT_AVX2 static void scores_avx2(const attention_job *job, int g, size_t lo, size_t hi) {
    const int hd = job->head_dim, group = job->heads / job->kv_heads;
    for (int h0 = 0; h0 < group; h0 += 4) {
        int nh = group - h0 < 4 ? group - h0 : 4;
        for (size_t j = lo; j < hi; j++) {
            const float *k = job->keys + j * job->kv_stride + (size_t)g * hd;
            __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
            for (int d = 0; d < hd; d += 8) {
                __m256 kv = _mm256_loadu_ps(k + d);
                for (int r = 0; r < nh; r++) {
                    const float *q = job->q + (size_t)(g * group + h0 + r) * hd;
                    acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), kv, acc[r]);
                }
            }
            // The four sums at once: three horizontal adds and one add of the halves.
            __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
            __m128 sums = _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)),
                                     _mm_set1_ps(job->scale));
            float s4[4];
            _mm_storeu_ps(s4, sums);
            for (int r = 0; r < nh; r++) job->scores[(size_t)(g * group + h0 + r) * job->visible + j] = s4[r];
        }
    }
}

// s[j] = exp(s[j] − m) for j from lo in whole groups of eight, adding them to *l; returns
// the first j not done.
SQ_ATT_AVX2 static size_t exp_shifted_avx2(float *s, size_t lo, size_t hi, float m, float *l) {
    __m256 sum = _mm256_setzero_ps(), mv = _mm256_set1_ps(m);
    size_t j = lo;
    for (; j + 8 <= hi; j += 8) {
        __m256 e = sq_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
        _mm256_storeu_ps(s + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    *l += hsum8(sum);
    return j;
}

// o += Σ p_j · v_j over [lo, hi) for head h (p already in `scores`).
SQ_ATT_AVX2 static void values_avx2(const attention_job *job, int h, size_t lo, size_t hi, float *o) {
    const int hd = job->head_dim, g = h / (job->heads / job->kv_heads);
    const float *p = job->scores + (size_t)h * job->visible;
    for (int d0 = 0; d0 < hd; d0 += 64) {
        int nd = hd - d0 < 64 ? (hd - d0) / 8 : 8;
        __m256 acc[8];
        for (int r = 0; r < nd; r++) acc[r] = _mm256_setzero_ps();
        for (size_t j = lo; j < hi; j++) {
            const float *v = job->values + j * job->kv_stride + (size_t)g * hd + d0;
            __m256 pj = _mm256_set1_ps(p[j]);
            for (int r = 0; r < nd; r++) acc[r] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 8 * r), acc[r]);
        }
        for (int r = 0; r < nd; r++) _mm256_storeu_ps(o + d0 + 8 * r, acc[r]);
    }
}
#endif

static void scores_plain(const attention_job *job, int g, size_t lo, size_t hi) {
    const int hd = job->head_dim, group = job->heads / job->kv_heads;
    for (size_t j = lo; j < hi; j++) {
        const float *k = job->keys + j * job->kv_stride + (size_t)g * hd;
        for (int r = 0; r < group; r++) {
            int h = g * group + r;
            job->scores[(size_t)h * job->visible + j] = job->scale * dot_plain(job->q + (size_t)h * hd, k, hd);
        }
    }
}

static void values_plain(const attention_job *job, int h, size_t lo, size_t hi, float *o) {
    const int hd = job->head_dim, g = h / (job->heads / job->kv_heads);
    const float *p = job->scores + (size_t)h * job->visible;
    memset(o, 0, sizeof(float) * (size_t)hd);
    for (size_t j = lo; j < hi; j++) {
        const float *v = job->values + j * job->kv_stride + (size_t)g * hd;
        for (int d = 0; d < hd; d++) o[d] += p[j] * v[d];
    }
}

// One part: positions [part·part_len, …) for every head, into its (o, m, l) slots.
static void attention_part(void *ctx, size_t part) {
    const attention_job *job = (const attention_job *)ctx;
    size_t lo = part * job->part_len, hi = lo + job->part_len;
    if (hi > job->visible) hi = job->visible;
    const int hd = job->head_dim;
    for (int g = 0; g < job->kv_heads; g++) {
#if defined(__x86_64__) || defined(__i386__)
        if (job->avx2) scores_avx2(job, g, lo, hi); else
#endif
        scores_plain(job, g, lo, hi);
    }
    for (int h = 0; h < job->heads; h++) {
        float *s = job->scores + (size_t)h * job->visible;
        float m = -INFINITY, l = 0;
        for (size_t j = lo; j < hi; j++) m = s[j] > m ? s[j] : m;
        size_t j0 = lo;
#if defined(__x86_64__) || defined(__i386__)
        if (job->avx2) j0 = exp_shifted_avx2(s, lo, hi, m, &l);
#endif
        for (size_t j = j0; j < hi; j++) {
            s[j] = expf(s[j] - m);
            l += s[j];
        }
        float *slot = job->partial + (part * (size_t)job->heads + (size_t)h) * (size_t)(hd + 2);
#if defined(__x86_64__) || defined(__i386__)
        if (job->avx2) values_avx2(job, h, lo, hi, slot); else
#endif
        values_plain(job, h, lo, hi, slot);
        slot[hd] = m;
        slot[hd + 1] = l;
    }
}

size_t sq_attention_scratch_floats(size_t visible, int heads, int head_dim, int threads) {
    if (threads < 1) threads = 1;
    return (size_t)heads * visible + (size_t)threads * (size_t)heads * (size_t)(head_dim + 2);
}

void sq_attention_decode(const float *q, const float *keys, const float *values, size_t kv_stride, size_t visible,
                         int heads, int kv_heads, int head_dim, float scale, float *out, float *scratch, int threads) {
    if (threads < 1) threads = 1;
    // Parts of at least 32 positions: below that the hand-over costs more than it saves.
    size_t parts = visible / 32;
    if (parts > (size_t)threads) parts = (size_t)threads;
    if (parts < 1) parts = 1;
    attention_job job = {
        .q = q, .keys = keys, .values = values, .kv_stride = kv_stride, .visible = visible,
        .part_len = (visible + parts - 1) / parts, .heads = heads, .kv_heads = kv_heads, .head_dim = head_dim,
        .avx2 = sq_cpu_level() >= 1 && head_dim % 8 == 0, .scale = scale,
        .scores = scratch, .partial = scratch + (size_t)heads * visible,
    };
    if (parts == 1) attention_part(&job, 0);
    else sq_parallel_for(parts, (int)parts, attention_part, &job);
    for (int h = 0; h < heads; h++) {
        float m = -INFINITY;
        for (size_t p = 0; p < parts; p++) {
            float mp = job.partial[(p * (size_t)heads + (size_t)h) * (size_t)(head_dim + 2) + (size_t)head_dim];
            m = mp > m ? mp : m;
        }
        float *o = out + (size_t)h * (size_t)head_dim;
        memset(o, 0, sizeof(float) * (size_t)head_dim);
        float l = 0;
        for (size_t p = 0; p < parts; p++) {
            const float *slot = job.partial + (p * (size_t)heads + (size_t)h) * (size_t)(head_dim + 2);
            float w = expf(slot[head_dim] - m);
            l += w * slot[head_dim + 1];
            for (int d = 0; d < head_dim; d++) o[d] += w * slot[d];
        }
        float inv = 1 / l;
        for (int d = 0; d < head_dim; d++) o[d] *= inv;
    }
}
