#include "runners/kernels/linear.h"

#include <ATen/ATen.h>

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

void apply_activation_in_place(at::Tensor& y, LinearActivation activation) {
  switch (activation) {
    case LinearActivation::none: break;
    case LinearActivation::gelu_erf: at::gelu_out(y, y); break;
    case LinearActivation::gelu_tanh: at::gelu_out(y, y, "tanh"); break;
    case LinearActivation::relu: y.relu_(); break;
  }
}

}  // namespace embeval
