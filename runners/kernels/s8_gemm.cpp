#ifdef EMBEVAL_HAVE_DNNL
#include "runners/kernels/s8_gemm.h"

#include <algorithm>
#include <vector>

#include <ATen/ATen.h>

namespace embeval {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;
using onednn::cpu_engine;

S8Gemm::S8Gemm(const at::Tensor& weight, const at::Tensor& column_scales)
    : k_(weight.size(1)), n_(weight.size(0)), scaled_(column_scales.defined()) {
  const memory::dim kk = k_, nn = n_;
  dnnl::primitive_attr attr;
#if DNNL_VERSION_MAJOR >= 3
  scaled_ = false;
#else
  if (scaled_) {
    const at::Tensor sc = column_scales.to(at::kFloat).contiguous();
    attr.set_output_scales(1 << 1, std::vector<float>(sc.data_ptr<float>(), sc.data_ptr<float>() + n_));
  }
#endif
  // Each call passes its own scratchpad, so threads may run the same
  // primitive at once (oneDNN's library-held one is shared).
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dt out = scaled_ ? dt::f32 : dt::s32;
  matmul_ = std::make_unique<onednn::RowsMatmul>(
      [kk, nn, out, attr](memory::dim rows, const memory::desc& weights) {
        return onednn::matmul_pd(memory::desc({rows, kk}, dt::s8, tag::ab), weights, memory::desc(),
                                 memory::desc({rows, nn}, out, tag::ab), attr);
      },
      memory::desc({k_, n_}, dt::s8, tag::any));
  kernel_ = matmul_->kernel();
  const at::Tensor w = weight.contiguous();
  memory plain(memory::desc({k_, n_}, dt::s8, tag::ba), cpu_engine(), w.data_ptr());
  packed_storage_ = at::empty({static_cast<int64_t>(matmul_->weights_desc().get_size())}, at::kByte);
  packed_weight_ = memory(matmul_->weights_desc(), cpu_engine(), packed_storage_.data_ptr());
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(plain, packed_weight_).execute(stream, plain, packed_weight_);
  stream.wait();
}

at::Tensor S8Gemm::operator()(const at::Tensor& src) const {
  const int64_t rows = src.size(0);
  at::Tensor dst = at::empty({rows, n_}, scaled_ ? at::kFloat : at::kInt);
  if (rows == 0) return dst;
  run(src.data_ptr<int8_t>(), rows, dst.data_ptr());
  return dst;
}

void S8Gemm::run(const int8_t* src, int64_t rows, void* dst, at::Tensor* scratch) const {
  int64_t pad_bytes = 0;
  const dnnl::matmul prim = matmul_->get(rows, &pad_bytes);
  at::Tensor own;
  if (!scratch) scratch = &own;
  if (!scratch->defined() || scratch->numel() < pad_bytes) *scratch = at::empty({std::max<int64_t>(pad_bytes, 1)}, at::kByte);
  memory src_m(memory::desc({rows, k_}, dt::s8, tag::ab), cpu_engine(), const_cast<int8_t*>(src));
  memory dst_m(memory::desc({rows, n_}, scaled_ ? dt::f32 : dt::s32, tag::ab), cpu_engine(), dst);
  memory pad_m(memory::desc({scratch->numel()}, dt::u8, tag::a), cpu_engine(), scratch->data_ptr());
  dnnl::stream stream(cpu_engine());
  prim.execute(stream, {{DNNL_ARG_SRC, src_m},
                        {DNNL_ARG_WEIGHTS, packed_weight_},
                        {DNNL_ARG_DST, dst_m},
                        {DNNL_ARG_SCRATCHPAD, pad_m}});
  stream.wait();
}

void S8Gemm::unpack_into(int8_t* dst) const {
  memory plain(memory::desc({k_, n_}, dt::s8, tag::ba), cpu_engine(), dst);
  memory packed = packed_weight_;
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(packed, plain).execute(stream, packed, plain);
  stream.wait();
}

}  // namespace embeval
#endif
