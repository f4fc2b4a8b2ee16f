#pragma once
// s8 [M, K] x s8 [K, N] -> s32 [M, N] through oneDNN (VNNI or AMX where the
// CPU has them), weights packed once into the kernel's layout; what the
// W8A8 layer (int8_linear.h) and the weight-only int8 layer's integer path
// (weight_only_linear.h) multiply on. Include only under EMBEVAL_HAVE_DNNL.
#include <cstdint>
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "runners/kernels/onednn_util.h"

namespace embeval {

class S8Gemm {
 public:
  // weight: int8 [n, k] row-major; column_scales float [n] or undefined:
  // given, the output is float acc * scale[n] (oneDNN 2's output scales,
  // applied inside the kernel at no measurable cost; oneDNN 3 dropped them
  // for run-time scales, and there the output stays s32: scaled() says
  // which). A primitive per M (onednn::RowsMatmul: a runtime M never gets
  // the AMX kernel). Throws dnnl::error when oneDNN has no kernel.
  explicit S8Gemm(const at::Tensor& weight, const at::Tensor& column_scales = at::Tensor());

  // src int8 [rows, k] contiguous -> int32 (float when scaled) [rows, n].
  at::Tensor operator()(const at::Tensor& src) const;

  // The same into `dst` (rows x n); callable from inside a parallel region
  // (oneDNN then runs on the calling thread), given a scratchpad of the
  // thread's own (grown here when too small).
  void run(const int8_t* src, int64_t rows, void* dst, at::Tensor* scratch = nullptr) const;

  // The weights read back from the packed copy, exactly: int8 [n, k] into
  // n * k bytes at dst.
  void unpack_into(int8_t* dst) const;

  const std::string& kernel() const { return kernel_; }
  bool scaled() const { return scaled_; }
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int64_t packed_bytes() const { return packed_storage_.numel(); }

 private:
  std::unique_ptr<onednn::RowsMatmul> matmul_;
  dnnl::memory packed_weight_;
  at::Tensor packed_storage_;
  std::string kernel_;
  int64_t k_ = 0, n_ = 0;
  bool scaled_ = false;
};

}  // namespace embeval
