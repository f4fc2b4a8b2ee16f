#pragma once
// AWQ (Lin et al., arXiv 2306.00978) as mit-han-lab/llm-awq does it
// (awq/quantize/auto_scale.py, auto_clip.py), adapted to BERT's post-
// LayerNorm layer:
//
//  - Activation statistic: mean |x| of each input channel over the
//    calibration tokens (get_act_scale), padding excluded.
//  - Scale search per group of Linears that share an input: for ratio
//    r = 0, 1/20, ..., 19/20, s = mean|x|^r clamped to >= 1e-4 and divided by
//    sqrt(max(s) min(s)); the Linears get Q(W diag(s)) diag(s)^-1 (Q = the
//    group-wise asymmetric round-to-nearest the method ends with) and the
//    block's output on the calibration inputs is compared with the float
//    block's; the r with the least mean squared error wins (the first on a
//    tie; r = 0 is plain RTN, so the search never does worse on its data).
//    The x-only form of the paper and llm-awq, not AutoAWQ's duo_scaling.
//  - The groups and the blocks they are judged on, as llm-awq's
//    auto_scale_block for BERT-like layers: Q,K,V (judged on the attention
//    output after the float output projection, as module2inspect=self_attn);
//    the attention output Linear (judged on itself); the FFN input (judged
//    on the whole FFN: GELU and the float FFN output, as module2inspect=mlp);
//    the FFN output (judged on itself). Every scale of a layer is searched on
//    the unchanged float layer, then all are applied.
//  - Applying s: W diag(s) in the Linear, and x / s before it. Folded where
//    that is exact: V's rows and bias / s feed the attention output Linear
//    (softmax(QK^T) V is linear in V, per head), as scale_fc_fc. Elsewhere
//    the Linear divides its input (WeightOnlyLinear's input divisor): the
//    LayerNorms before Q,K,V and the FFN input also feed the residual, and
//    GELU is not linear (llm-awq's ScaledActivation for BLOOM's GELU).
//  - Clip search (auto_clip_layer) on the scaled weights and scaled inputs:
//    per output channel and group, max |w| shrunk by 1 - i/20 for i < 10,
//    weights clamped symmetrically to it, the shrink whose quantized group
//    dot products differ least (mean squared over tokens) from the float
//    ones wins. Q and K rows are not clipped (the QK^T product makes their
//    error hard to judge, as in the reference). Tokens: every
//    max(1, T / 512)-th (AutoAWQ's step).
//  - As in the reference, layer i+1 is calibrated on the float output of
//    layer i (AWQ does not carry quantization error forward).
//
// Cost: the scale search runs each block 20 times on the search tokens, so
// it compares outputs on at most `search_tokens` of the calibration tokens
// (whole calibration batches, in order); the statistic uses them all.
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "runners/bert/bert_model.h"

namespace embeval {

struct AwqOptions {
  int bits = 4;
  int64_t group_size = 128;        // 0: one group per row
  int n_grid = 20;                 // scale exponents tried: i / n_grid, i < n_grid
  double max_shrink = 0.5;         // clip: shrinks 1 - i / n_grid for i < max_shrink * n_grid
  int64_t clip_tokens = 512;       // clip: tokens sampled (every max(1, T / clip_tokens)-th)
  int64_t search_tokens = 4096;    // scale search: tokens whose block outputs are compared
};

// The weights as the method will quantize them, dequantized (float32):
// group-wise asymmetric round-to-nearest (AWQ's pseudo_quantize_tensor).
at::Tensor awq_pseudo_quantize(const at::Tensor& weight, const AwqOptions& o, const std::string& tensor);

// Scale search for Linears `weights` that share an input with per-channel
// mean magnitude `x_mean` [in]. `block(ws)` runs the inspected block with
// those weights in place of `weights` on the calibration inputs; returns s
// [in] and, through `best_ratio`, the exponent chosen.
at::Tensor awq_search_scale(const at::Tensor& x_mean, const std::vector<at::Tensor>& weights,
                            const std::function<at::Tensor(const std::vector<at::Tensor>&)>& block,
                            const AwqOptions& o, const std::string& tensor, double* best_ratio = nullptr);

// Clip search for one weight [out, in] with its input rows x [T, in]:
// returns the weight clamped per (output channel, group) to the best max.
at::Tensor awq_clip(const at::Tensor& weight, const at::Tensor& x, const AwqOptions& o, const std::string& tensor);

// One encoder layer made ready to quantize: the weights (scaled and
// clipped) and biases each Linear slot will hold, the input divisor of each
// (undefined where the scale was folded), and the ratios chosen.
struct AwqLayer {
  std::array<LinearParams, 4> params;
  std::array<at::Tensor, 4> divisor;
  std::array<double, 4> ratio{};
};

// The calibration as it enters one layer: hidden states and attention masks
// per batch (float layer outputs of the layer before).
struct LayerCalibration {
  std::vector<at::Tensor> hidden;      // [b, t, hidden]
  std::vector<at::Tensor> mask_bias;   // additive [b, 1, 1, t]
  std::vector<at::Tensor> valid;       // int64 indices of real tokens in the flattened [b * t]
};

// Runs `layer` of `model` (still float there) over `calibration`, searches
// and applies the scales and clips for its four Linears (float parameters
// from `weights`), and moves `calibration` on to the layer's float output.
AwqLayer awq_layer(const BertModel& model, const StateDict& weights, int64_t layer, LayerCalibration& calibration,
                   const AwqOptions& o, bool clip = true);

}  // namespace embeval
