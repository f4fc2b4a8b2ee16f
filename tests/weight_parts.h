#pragma once
// Random integer weights in QuantizedWeight's layout for the weight-only
// kernel tests (test_weight_only_linear.cpp, test_aten_quant_linear.cpp),
// and the float weight they stand for, computed directly from the formula
// W[o][i] = scale[o][g] * (code[o][i] - zero[o][g]), g = g_idx[i] or i / group.
#include <cstdint>

#include <ATen/ATen.h>

namespace embeval::test {

struct WeightParts {
  at::Tensor codes, scales, zeros, g_idx;
};

// Scales are fp16-representable, as every method stores them; with
// act_order, g_idx is a random permutation of the groups of `group` columns.
inline WeightParts random_weight_parts(int64_t out, int64_t in, int bits, int64_t group, bool act_order,
                                       uint64_t seed) {
  at::manual_seed(seed);
  const int64_t groups = group > 0 ? in / group : 1;
  WeightParts p;
  p.codes = at::randint(0, 1 << bits, {out, in}, at::kLong).to(at::kByte);
  p.scales = (at::rand({out, groups}) * 0.02 + 1e-3).to(at::kHalf).to(at::kFloat);
  p.zeros = at::randint(0, 1 << bits, {out, groups}, at::kLong).to(at::kInt);
  if (act_order) p.g_idx = at::randperm(in, at::kLong).div(group, "floor").to(at::kInt);
  return p;
}

inline at::Tensor reference_weight(const WeightParts& p, int64_t in, int64_t group) {
  at::Tensor cols = p.g_idx.defined() ? p.g_idx.to(at::kLong)
                                      : at::arange(in, at::kLong).div(group > 0 ? group : in, "floor");
  return p.scales.index_select(1, cols) * (p.codes.to(at::kFloat) - p.zeros.to(at::kFloat).index_select(1, cols));
}

// Largest absolute difference over the largest magnitude of `want`, in float64.
inline double rel_err(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor w = want.to(at::kDouble);
  return ((got.to(at::kDouble) - w).abs().max() / (w.abs().max() + 1e-12)).item<double>();
}

}  // namespace embeval::test
