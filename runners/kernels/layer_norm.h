#pragma once
// LayerNorm(x + residual) over the last dimension, as BERT's post-LN layers
// apply it after each sublayer: y = (v - mean) / sqrt(var + eps) * weight +
// bias with v = x + residual, mean and biased variance over the row.
//
// Why a kernel of our own: libtorch 1.13's CPU LayerNorm in bfloat16 is
// slow. At bert-base, batch 32 x 128, 2 threads, on an AMX Xeon, the two
// adds and LayerNorms of one layer took 23.6 ms in bf16 against 4.3 ms in
// fp32, a third of the whole bf16 layer (69 ms), more than its four GEMMs.
// Here a bf16 row is widened to fp32 once, the statistics and the
// normalisation run in fp32 (as ATen's do), and the result is rounded to
// bf16 once (round to nearest even, as c10::BFloat16); each pass over a
// row sums in four 16-lane accumulators (one chain of dependent adds bound
// it: bench_encoder BM_add_layer_norm, 4,096 x 768, 2 threads, alternating:
// 0.48 / 0.47 ms against 0.61 / 0.63 with one, 0.45 / 0.45 against 0.60 /
// 0.60 with the rows in L2; BM_layer_breakdown's add_ln_ms, the layer's
// two, 1.63 / 1.71 against 2.12 / 2.08). On a CPU with AVX512-BF16, widths
// a multiple of 16 take an intrinsics form of the same passes, rounded by
// VCVTNE2PS2BF16 (results below 1.2e-38 flushed to zero, as the AMX
// kernels round; EMBEVAL_NO_AVX512_LAYER_NORM=1 keeps the other): three
// alternating rounds, BM_add_layer_norm 0.62 / 0.62 / 0.59 ms against 0.75
// / 0.74 / 0.67 (in L2 0.36 / 0.33 / 0.33 against 0.52 / 0.52 / 0.47),
// add_ln_ms 1.38 / 1.50 / 1.33 against 1.66 / 1.58 / 1.51. Other dtypes and
// devices, and non-contiguous inputs, keep ATen (x.add_(residual) then
// at::layer_norm), so fp32 numbers are exactly what they were.
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace embeval {

// x and residual [..., h] of one dtype; weight, bias [h]. x is overwritten
// (it is a sublayer's fresh output; residual may be x). Returns [..., h] in
// x's dtype: x itself on the bf16 kernel's path, a new tensor on ATen's.
at::Tensor add_layer_norm(at::Tensor x, const at::Tensor& residual, const at::Tensor& weight, const at::Tensor& bias,
                          double eps);

// out = LayerNorm(a + residual) for bf16 rows in raw memory on the calling
// thread alone: add_layer_norm's numbers (the same row kernel) for a caller
// that runs its own blocks of rows inside one parallel region (BertModel's
// layer blocks: runners/bert/bert_layer_blocks.h). Made once a call (the
// weight and bias widened to fp32); out may be a.
class AddLayerNormRows {
 public:
  // weight, bias [h], any floating dtype, on the CPU. far_residual: the
  // residual rows were last touched long enough ago to have left L2 (a
  // layer's input by the time of its attention block's LayerNorm): each
  // row's pass then fetches the rows 4 ahead into L1 first (AVX-512 form;
  // that LayerNorm in BertModel's layer blocks, bert-base batch 32, 2
  // threads, cycles a 256-row block over three alternating rounds:
  // 0.143-0.157 M against 0.193-0.208 M; the FFN's LayerNorm, whose
  // residual is still in L2, 0.196-0.231 M against 0.179-0.216 M with it).
  AddLayerNormRows(const at::Tensor& weight, const at::Tensor& bias, double eps, int64_t h,
                   bool far_residual = false);
  // a, residual, out [rows, h] bf16 bits, contiguous; v: h floats of the
  // calling thread's scratch.
  void operator()(const uint16_t* a, const uint16_t* residual, int64_t rows, float* v, uint16_t* out) const;

 private:
  at::Tensor w_, b_;
  float eps_;
  int64_t h_;
  bool vector_, far_;
};

// BERT's embeddings and their LayerNorm in one pass a token, bf16 on the
// CPU: y = add_layer_norm(pos[positions], bf16(word[ids] + type_row)), the
// same bits as at::embedding, ATen's bf16 add_ and add_layer_norm, which
// made three passes over the batch's activations and two gathers
// (BM_layer_breakdown's embed_ms, bert-base, batch 32, three alternating
// rounds: 2.00 / 2.14 / 2.18 ms against 3.87 / 3.91 / 4.06). ids, positions [b, t] (any integer
// type); word [vocab, h], pos [places, h], type_row [h] bf16, contiguous.
// An id or position outside its table: a one-line error naming it and
// where it is. Undefined where the types, devices or shapes are not those
// (the caller runs ATen's steps).
at::Tensor embed_layer_norm(const at::Tensor& word, const at::Tensor& type_row, const at::Tensor& pos,
                            const at::Tensor& ids, const at::Tensor& positions, const at::Tensor& weight,
                            const at::Tensor& bias, double eps);

}  // namespace embeval
