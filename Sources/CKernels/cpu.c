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
