// Element-wise activations of the generation path.
#include <math.h>
#include "CKernels.h"
#include "exp_x86.h"

#if defined(__x86_64__) || defined(__i386__)
// The whole groups of eight; returns how many values it did.
__attribute__((target("avx2,fma"))) static size_t sq_swiglu_avx2(float *gate, const float *up, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1);
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = sq_exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    return i;
}
#endif

void sq_swiglu(float *gate, const float *up, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) || defined(__i386__)
    if (sq_cpu_level() >= 1) i = sq_swiglu_avx2(gate, up, n);
#endif
    for (; i < n; i++) gate[i] = gate[i] / (1 + expf(-gate[i])) * up[i];
}
