#pragma once
// One small interface for the encoder's Linear layers, many kernels behind
// it (faiss's habit): PackedLinear (fp32 / bf16, oneDNN or ATen),
// Int8Linear (W8A8), WeightOnlyLinear (int8 / int4 weights). The model holds
// its layers through this, so quantization swaps a kernel without the
// model knowing which.
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace embeval {

// The activation a Linear applies to its output (BERT's FFN input layer).
enum class LinearActivation { none, gelu_erf, gelu_tanh, relu };

// y with the activation applied by ATen (the kernels that cannot fuse it).
at::Tensor apply_activation(at::Tensor y, LinearActivation activation);
// The same, written over y (e.g. a block of rows still in cache).
void apply_activation_in_place(at::Tensor& y, LinearActivation activation);

class Linear {
 public:
  virtual ~Linear() = default;
  // x: [..., in] -> [..., out], activation applied.
  virtual at::Tensor operator()(const at::Tensor& x) const = 0;
  // What runs, e.g. "onednn:gemm:jit" or "int4 tiles of 384 -> onednn:gemm:jit".
  virtual std::string implementation() const = 0;
  // Bytes the layer's weights occupy in memory (packed form, scales included).
  virtual int64_t weight_bytes() const = 0;
};

}  // namespace embeval
