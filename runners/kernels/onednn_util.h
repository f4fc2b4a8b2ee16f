#pragma once
// What the oneDNN kernels (packed_linear, attention) share; include only
// under EMBEVAL_HAVE_DNNL.
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/ScalarType.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "runners/kernels/linear.h"

namespace embeval::onednn {

// One CPU engine for the process (oneDNN threads follow OpenMP, i.e. at::set_num_threads).
dnnl::engine& cpu_engine();

// fp32 and bf16 are the types the encoder hands to oneDNN.
inline dnnl::memory::data_type type_of(c10::ScalarType t) {
  return t == c10::kBFloat16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

// oneDNN's reference kernels are correct but far slower than BLAS; callers
// keep ATen rather than run one.
inline bool is_reference_kernel(const char* impl_info) { return std::string(impl_info).find("ref") != std::string::npos; }
// The AMX brgemm kernels ("brg:avx512_core_amx_bf16", "..._amx_int8").
inline bool is_amx_kernel(const std::string& impl_info) { return impl_info.find("amx") != std::string::npos; }

// oneDNN 2.6's AMX bf16 matmul slows down as the input width K grows past
// ~1024 (bench_kern_quant BM_linear, PackedLinear bf16, 4096 rows -> 768
// outputs, 2 threads, GOP/s: K = 768 2,690-2,900, 1,024 2,830, 1,536 2,230,
// 2,048 1,830, 3,072 1,870-1,990), however the rows or the outputs are
// split. So the bf16 products with K above SLICE_ABOVE (PackedLinear, the
// weight-only bf16x3 tiles) run over slices of at most SLICE_WIDTH inputs,
// summed in fp32. bert-base bf16 forward, batch 32 x 128, 2 threads, three
// alternating runs (ms): whole products 447-467, slices of 1,024 433-455,
// of 768 416-435.
constexpr int64_t SLICE_ABOVE = 1024;
constexpr int64_t SLICE_WIDTH = 768;
// [start, width) of n inputs cut into ceil(n / SLICE_WIDTH) slices, each
// boundary a multiple of 64 (bf16 AMX weights come in blocks of 64 outputs,
// so the same cut of a layer's outputs is a run of whole blocks).
std::vector<std::pair<int64_t, int64_t>> input_slices(int64_t n);

// Post-op helpers that read the same on oneDNN 2.x and 3.x.
inline void append_eltwise(dnnl::post_ops& ops, dnnl::algorithm alg, float alpha, float beta) {
#if DNNL_VERSION_MAJOR >= 3
  ops.append_eltwise(alg, alpha, beta);
#else
  ops.append_eltwise(1.f, alg, alpha, beta);
#endif
}

// The activation as a fused eltwise post-op (none: nothing appended).
inline void append_activation(dnnl::post_ops& ops, LinearActivation activation) {
  if (activation == LinearActivation::none) return;
  append_eltwise(ops,
                 activation == LinearActivation::gelu_erf    ? dnnl::algorithm::eltwise_gelu_erf
                 : activation == LinearActivation::gelu_tanh ? dnnl::algorithm::eltwise_gelu_tanh
                                                             : dnnl::algorithm::eltwise_relu,
                 0.f, 0.f);
}

inline dnnl::memory::dims dims_of(const dnnl::memory::desc& md) {
#if DNNL_VERSION_MAJOR >= 3
  return md.get_dims();
#else
  return md.dims();
#endif
}

inline dnnl::matmul::primitive_desc matmul_pd(const dnnl::memory::desc& src, const dnnl::memory::desc& weights,
                                              const dnnl::memory::desc& bias, const dnnl::memory::desc& dst,
                                              const dnnl::primitive_attr& attr) {
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::matmul::primitive_desc(cpu_engine(), src, weights, bias, dst, attr);
#else
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, bias, dst), attr, cpu_engine());
#endif
}

// A matmul whose weights are packed once and whose primitives are made per
// row count. Why: oneDNN 2.6 serves a matmul with a runtime M
// (DNNL_RUNTIME_DIM_VAL) only from its older gemm:jit kernels, never from the
// brgemm ones that use AMX (measured on an AMX Xeon, 2 threads, 4096 x 1024 x
// 1024: bf16 437 GFLOP/s runtime-M against 1,074 with M fixed, s8 622 against
// 1,800). The packed weight layout brgemm asks for does
// not depend on M (checked for M = 1 .. 4096), so one packed copy serves
// every primitive.
class RowsMatmul {
 public:
  // make(rows, weights) describes the product for `rows` rows (rows is
  // DNNL_RUNTIME_DIM_VAL for the runtime-M form), weights as given.
  using MakePd = std::function<dnnl::matmul::primitive_desc(dnnl::memory::dim rows, const dnnl::memory::desc& weights)>;
  RowsMatmul(const RowsMatmul&) = delete;
  RowsMatmul& operator=(const RowsMatmul&) = delete;
  // Chooses between a primitive per row count (when a fixed M gets an AMX
  // kernel that a runtime M does not, or make() throws for a runtime M)
  // and one runtime-M primitive;
  // `weights_any` is the weights' desc with tag::any. Throws dnnl::error
  // when oneDNN has no kernel at all.
  RowsMatmul(MakePd make, const dnnl::memory::desc& weights_any);

  // The weights' layout to pack into, and the kernel's name.
  const dnnl::memory::desc& weights_desc() const { return weights_; }
  const std::string& kernel() const { return kernel_; }
  // The primitive for `rows` rows (made once per row count; the cache is
  // bounded and starts over rather than grow without limit), and the bytes
  // of scratchpad it asks for when made with scratchpad_mode::user.
  dnnl::matmul get(dnnl::memory::dim rows, int64_t* scratchpad_bytes = nullptr) const;

 private:
  MakePd make_;
  dnnl::memory::desc weights_;
  std::string kernel_;
  bool per_rows_ = false;
  struct Made {
    dnnl::matmul matmul;
    int64_t scratchpad_bytes = 0;
  };
  static Made made_from(const dnnl::matmul::primitive_desc& pd);
  Made runtime_;
  mutable std::mutex mutex_;
  mutable std::map<dnnl::memory::dim, Made> by_rows_;
};

}  // namespace embeval::onednn
