#pragma once
// The fake-quant form of W8A8: x is quantised to int8 per token and back
// (SmoothQuant's fake_quant.py), then multiplied by the dequantised weights
// in the fp32 kernel. Same integers as Int8Linear, float arithmetic.
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

#include "runners/kernels/linear.h"
#include "runners/kernels/packed_linear.h"

namespace embeval {

class FakeW8A8Linear : public Linear {
 public:
  // weight: the dequantised float32 [out, in]; smooth as Int8Linear's.
  FakeW8A8Linear(const at::Tensor& weight, const at::Tensor& bias, LinearActivation activation,
                 const at::Tensor& smooth = at::Tensor());
  at::Tensor operator()(const at::Tensor& x) const override;
  std::string implementation() const override { return "fake-quant w8a8 -> " + linear_.implementation(); }
  int64_t weight_bytes() const override { return linear_.weight_bytes(); }

 private:
  PackedLinear linear_;
  at::Tensor smooth_;
};

}  // namespace embeval
