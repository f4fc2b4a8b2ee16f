#pragma once
// An fp32 row written as three int8 "limbs": over the row's step
// s = max|x| / 127, x = s (a1 + a2 / 254 + a3 / 254^2), each limb the
// rounded remainder of the one before times 254, to within s / 2 / 254^2
// (3e-8 of the row's largest element: what fp32 keeps of each element).
// Products of the limbs with int8 / uint8 weight codes are exact int32 sums,
// so three int8 GEMMs (and one fp32 combination) give an fp32-grade product
// of x with quantized weights: the weight-only kernels' path on CPUs whose
// int8 GEMM is fast (weight_only_linear.h, vnni_group_gemm.h).
#include <cstdint>

namespace embeval {

constexpr float LIMB_BASE = 254.0f;

// max |x[k]| over a row of n; NaN when an element is NaN or infinite.
float limb_row_absmax(const float* x, int64_t n);

// The limbs of one row of n values at step `step` into a1, a2, a3, and each
// limb's sum into sums[0..2]. Rounding is to nearest (ties to even); every
// limb is clamped to +-127, which only the rounding of x / step to 127.00001
// could reach.
void split_limbs(const float* x, int64_t n, float step, int8_t* a1, int8_t* a2, int8_t* a3, int32_t* sums);

}  // namespace embeval
