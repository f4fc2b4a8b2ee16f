#pragma once
// Quantizes a loaded BertModel in place: every Linear of every encoder layer
// (Q, K, V fused, attention output, FFN in and out) is replaced by the
// kernel the method names; embeddings, LayerNorms and the sentence-
// transformers head stay in floating point.
//
// The round-to-nearest methods (wo-int8[-gN], wo-int4[-gN], w8a8),
// SmoothQuant (sq-w8a8-aX), GPTQ (gptq-int4|int8[-gN][-actorder], layer by
// layer on the weight-only kernel) and AWQ (awq-int4[-gN], runners/quant/
// awq.h: scales searched per layer, the unfoldable ones divided out of the
// Linear's input, then clipping), calibrated on `calibration`.
//
// SmoothQuant as its reference code does it (smooth.py smooth_ln_fcs):
// s_j = max(max|X_j|^a / max(max_i |W_ij|, 1e-5)^(1-a), 1e-5) for the Linears
// fed by a LayerNorm (Q, K, V together, and the FFN input); the attention
// output and FFN output Linears are plain W8A8, as in the reference. BERT's
// LayerNorms also feed the residual, so 1/s is not folded into them (that
// would change the model): the activation quantization step divides by s
// and the weights' columns are multiplied by it, which is exact before
// rounding.
//
// `fake`: the same integers dequantised back to fp32 and run through the fp32
// kernel (activations of w8a8 quantised and dequantised per token), so the
// accuracy of a method can be told apart from the effects of its kernel.
#include <cstdint>
#include <memory>
#include <string>

#include "runners/bert/bert_model.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/quant/quant_spec.h"
#include "runners/quant/quantized_weight.h"

namespace embeval {

struct QuantizeReport {
  std::string description;      // e.g. "wo-int4-g128: 48 Linear layers, kernel int4 tiles of 384 -> onednn:gemm:jit"
  double seconds = 0;           // time spent quantizing
  int64_t bytes_before = 0;     // Linear weight bytes before and after
  int64_t bytes_after = 0;
};

// On the CPU the model runs in fp32 or bf16 (the CPU kernels take either; in
// a bf16 model everything else runs in bf16 too, and calibration statistics
// come from the bf16 forward pass, AWQ's blocks judged in fp32); off the CPU
// (CUDA) in fp32, bf16 or fp16, on the ATen kernels of
// runners/kernels/aten_quant_linear.h. Calibration's forward passes run on
// the model's device; the methods' own arithmetic (GPTQ's Cholesky and
// updates, AWQ's searches, SmoothQuant's factors) on the CPU in float, as
// the weights they work on are read from the CPU state dict. Fake-quant
// only on the CPU in fp32. UserError naming the method otherwise, and for a
// group size that does not divide a layer's input width (naming the tensor).
// `keep`, when given, receives every quantized Linear under its checkpoint
// name (Q, K and V separately) for saving (quantized_checkpoint.h).
QuantizeReport quantize_model(BertModel& model, const StateDict& weights, const QuantSpec& spec, bool fake,
                              const std::vector<CalibrationBatch>& calibration = {},
                              std::vector<QuantizedLinear>* keep = nullptr);

// The kernel that runs one quantized Linear of a model on `device` computing
// in `dtype`: on the CPU Int8Linear for int8 activations, WeightOnlyLinear
// otherwise (either takes fp32 or bf16); elsewhere AtenInt8Linear and
// AtenWeightOnlyLinear. With `fake` (CPU, fp32), the dequantised weights
// through the fp32 kernel (activations quantised and dequantised per token
// for W8A8).
std::unique_ptr<Linear> quantized_kernel(const QuantizedLinear& q, LinearActivation activation, bool fake,
                                         at::ScalarType dtype = at::kFloat, c10::Device device = c10::Device(c10::kCPU));

// SmoothQuant's per-input-channel factors from activation and weight maxima.
at::Tensor smoothquant_factors(const at::Tensor& act_absmax, const at::Tensor& weight, double alpha);

}  // namespace embeval
