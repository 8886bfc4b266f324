// Vector square root for Swift's SIMD8<Float>.
//
// Swift's SIMD .squareRoot() lowers lane by lane to sqrtf with its errno check, so an
// 8-lane square root becomes eight scalar sqrtss plus branches. Clang's elementwise builtin
// is the IEEE square root on the whole vector (sqrtps on x86, fsqrt on arm64): same result,
// one instruction per register.
#ifndef DISTTRAIN_CVECTORMATH_H
#define DISTTRAIN_CVECTORMATH_H

typedef float dt_float8 __attribute__((ext_vector_type(8)));

/// Correctly rounded square root of each lane.
static inline __attribute__((always_inline)) dt_float8 dt_sqrt8(dt_float8 x) {
    return __builtin_elementwise_sqrt(x);
}

#endif
