#pragma once
// Quantizes a loaded BertModel in place: every Linear of every encoder layer
// (Q, K, V fused, attention output, FFN in and out) is replaced by the
// kernel the method names; embeddings, LayerNorms and the sentence-
// transformers head stay in floating point.
//
// Built so far: the round-to-nearest methods (wo-int8[-gN], wo-int4[-gN],
// w8a8). AWQ, GPTQ and SmoothQuant need calibration and are the next step:
// asking for them is a one-line error, not a silent fallback.
//
// `fake`: the same integers dequantised back to fp32 and run through the fp32
// kernel (activations of w8a8 quantised and dequantised per token), so the
// accuracy of a method can be told apart from the effects of its kernel.
#include <cstdint>
#include <string>

#include "runners/bert/bert_model.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/quant/quant_spec.h"

namespace embeval {

struct QuantizeReport {
  std::string description;      // e.g. "wo-int4-g128: 48 Linear layers, kernel int4 tiles of 384 -> onednn:gemm:jit"
  double seconds = 0;           // time spent quantizing
  int64_t bytes_before = 0;     // Linear weight bytes before and after
  int64_t bytes_after = 0;
};

// The model must run in fp32 on the CPU (the quantized kernels take fp32
// activations); UserError naming the method otherwise, and for a group size
// that does not divide a layer's input width (naming the tensor).
QuantizeReport quantize_model(BertModel& model, const StateDict& weights, const QuantSpec& spec, bool fake);

}  // namespace embeval
