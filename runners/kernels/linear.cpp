#include "runners/kernels/linear.h"

#include <cstring>

#include <ATen/ATen.h>

#include "harness/error.h"
#include "runners/kernels/cpu_dispatch.h"
#include "runners/kernels/vec_math.h"

namespace embeval {

at::Tensor apply_activation(at::Tensor y, LinearActivation activation) {
  switch (activation) {
    case LinearActivation::none: break;
    case LinearActivation::gelu_erf: return at::gelu(y);
    case LinearActivation::gelu_tanh: return at::gelu(y, "tanh");
    case LinearActivation::relu: return y.relu_();
  }
  return y;
}

namespace {

EMBEVAL_CLONES void gelu_erf_in_place(float* __restrict__ y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) EMBEVAL_GELU_ERF(y[i], y[i]);
}

EMBEVAL_CLONES void gelu_tanh_in_place(float* __restrict__ y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) EMBEVAL_GELU_TANH(y[i], y[i]);
}

EMBEVAL_CLONES void relu_in_place(float* __restrict__ y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] < 0.0f ? 0.0f : y[i];  // NaN stays NaN, as torch.relu
}

EMBEVAL_CLONES void round_bf16_loop(const float* __restrict__ x, int64_t n, uint16_t* __restrict__ out) {
  for (int64_t i = 0; i < n; ++i) EMBEVAL_ROUND_BF16(x[i], out[i]);
}

EMBEVAL_CLONES void split_bf16_loop(const float* __restrict__ x, int64_t n, uint16_t* __restrict__ hi,
                                    uint16_t* __restrict__ lo) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    EMBEVAL_ROUND_BF16(x[i], h);
    const uint32_t wide = uint32_t{h} << 16;
    float hf;
    std::memcpy(&hf, &wide, 4);
    hi[i] = h;
    EMBEVAL_ROUND_BF16(x[i] - hf, lo[i]);  // x - hi is exact in fp32
  }
}

}  // namespace

void round_to_bf16(const float* x, int64_t n, uint16_t* out) { round_bf16_loop(x, n, out); }

void split_to_bf16(const float* x, int64_t n, uint16_t* hi, uint16_t* lo) { split_bf16_loop(x, n, hi, lo); }

void apply_activation_in_place(float* y, int64_t n, LinearActivation activation) {
  switch (activation) {
    case LinearActivation::none: break;
    case LinearActivation::gelu_erf: gelu_erf_in_place(y, n); break;
    case LinearActivation::gelu_tanh: gelu_tanh_in_place(y, n); break;
    case LinearActivation::relu: relu_in_place(y, n); break;
  }
}

void Linear::run_rows(const uint16_t*, int64_t, uint16_t*) const {
  fail("Linear::run_rows: {} has no single-thread row form (check runs_rows() first)", implementation());
}

}  // namespace embeval
