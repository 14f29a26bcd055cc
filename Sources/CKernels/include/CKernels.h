#ifndef SWIFTQUANT_CKERNELS_H
#define SWIFTQUANT_CKERNELS_H
#include <stdint.h>
#include <stddef.h>

/// Which SIMD level the running CPU supports: 0 scalar, 1 AVX2, 2 AVX-512 VNNI, 3 NEON.
int sq_cpu_level(void);

/// Dot product of two int8 vectors of length n (scalar reference).
int32_t sq_dot_i8_ref(const int8_t *a, const int8_t *b, size_t n);

#endif
