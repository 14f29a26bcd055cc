#include "CKernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int sq_cpu_level(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) return 2;
    if (avx2) return 1;
    return 0;
#elif defined(__aarch64__)
    return 3;
#else
    return 0;
#endif
}

int32_t sq_dot_i8_ref(const int8_t *a, const int8_t *b, size_t n) {
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

size_t sq_fetch_add(size_t *counter, size_t v) { return __atomic_fetch_add(counter, v, __ATOMIC_RELAXED); }

void sq_release_free_heap(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t bytes) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t s = (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 1)
               ^ (uint64_t)_mm256_extract_epi64(a, 2) ^ (uint64_t)_mm256_extract_epi64(a, 3);
    for (; i < bytes; i++) s ^= p[i];
    return s;
}
#endif

uint64_t sq_read_bytes(const void *p, size_t bytes) {
    const uint8_t *b = (const uint8_t *)p;
#if defined(__x86_64__) || defined(__i386__)
    if (sq_cpu_level() >= 1) return read_avx2(b, bytes);
#endif
    // Four independent 8-byte lanes; compilers vectorise this loop for the baseline ISA.
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 32 <= bytes; i += 32) {
        uint64_t v[4];
        __builtin_memcpy(v, b + i, 32);
        s0 ^= v[0]; s1 ^= v[1]; s2 ^= v[2]; s3 ^= v[3];
    }
    uint64_t s = s0 ^ s1 ^ s2 ^ s3;
    for (; i < bytes; i++) s ^= b[i];
    return s;
}
