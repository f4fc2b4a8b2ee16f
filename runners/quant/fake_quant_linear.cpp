#include "runners/quant/fake_quant_linear.h"

#include <ATen/ATen.h>

#include "runners/kernels/int8_linear.h"

namespace embeval {

FakeW8A8Linear::FakeW8A8Linear(const at::Tensor& weight, const at::Tensor& bias, LinearActivation activation,
                               const at::Tensor& smooth)
    : linear_(weight.to(at::kFloat), bias, activation), smooth_(smooth) {}

at::Tensor FakeW8A8Linear::operator()(const at::Tensor& x) const {
  const int64_t in = x.size(-1);
  auto [codes, scales] = quantize_per_token(x.reshape({-1, in}), smooth_);
  at::Tensor xq = codes.to(at::kFloat) * scales.unsqueeze(1);
  // The smoothing divisor went into the codes; its multiplier sits in the weights' columns.
  return linear_(xq.view(x.sizes()));
}

}  // namespace embeval
