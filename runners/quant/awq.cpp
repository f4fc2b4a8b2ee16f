#include "runners/quant/awq.h"

#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "harness/error.h"
#include "runners/kernels/attention.h"
#include "runners/kernels/linear.h"
#include "runners/quant/quantized_weight.h"

namespace embeval {

at::Tensor awq_pseudo_quantize(const at::Tensor& weight, const AwqOptions& o, const std::string& tensor) {
  return quantize_rtn(weight, o.bits, o.group_size, false, tensor).dequantize();
}

at::Tensor awq_search_scale(const at::Tensor& x_mean, const std::vector<at::Tensor>& weights,
                            const std::function<at::Tensor(const std::vector<at::Tensor>&)>& block,
                            const AwqOptions& o, const std::string& tensor, double* best_ratio) {
  c10::InferenceMode guard;
  const at::Tensor want = block(weights);
  const at::Tensor mean = x_mean.to(at::kFloat);
  double best = std::numeric_limits<double>::infinity();
  at::Tensor best_scales;
  double chosen = -1;
  for (int i = 0; i < o.n_grid; ++i) {
    const double ratio = static_cast<double>(i) / o.n_grid;
    at::Tensor s = mean.pow(ratio).clamp_min(1e-4);
    s = s / (s.max() * s.min()).sqrt();
    std::vector<at::Tensor> ws;
    for (const at::Tensor& w : weights) ws.push_back(awq_pseudo_quantize(w * s.unsqueeze(0), o, tensor) / s.unsqueeze(0));
    const double loss = (block(ws) - want).to(at::kDouble).pow(2).mean().item<double>();
    if (loss < best) {  // strict: the first minimum wins, as in the reference
      best = loss;
      best_scales = s;
      chosen = ratio;
    }
  }
  if (!best_scales.defined()) fail("{}: AWQ's scale search found no finite error (non-finite activations?)", tensor);
  if (best_ratio) *best_ratio = chosen;
  return best_scales;
}

at::Tensor awq_clip(const at::Tensor& weight, const at::Tensor& x, const AwqOptions& o, const std::string& tensor) {
  c10::InferenceMode guard;
  const int64_t out = weight.size(0), in = weight.size(1);
  const int64_t gs = o.group_size <= 0 || o.group_size >= in ? in : o.group_size;
  const int64_t groups = group_count(in, o.group_size, "weight", tensor);
  const int64_t step = std::max<int64_t>(1, x.size(0) / o.clip_tokens);
  // [groups, n, gs]: each group's slice of the sampled input rows.
  const at::Tensor xs = x.reshape({-1, in}).slice(0, 0, x.size(0), step).to(at::kFloat);
  const at::Tensor xg = xs.view({-1, groups, gs}).permute({1, 0, 2}).contiguous();
  at::Tensor result = weight.to(at::kFloat).clone();
  const int steps = static_cast<int>(o.max_shrink * o.n_grid);
  for (int64_t o0 = 0; o0 < out; o0 += 256) {
    const int64_t n = std::min<int64_t>(256, out - o0);
    const at::Tensor w = result.narrow(0, o0, n).view({n, groups, gs});
    const at::Tensor org_max = w.abs().amax(-1);  // [n, groups]
    auto partial = [&](const at::Tensor& wq) {  // [groups, tokens, n]: each group's share of every dot product
      return at::bmm(xg, wq.view({n, groups, gs}).permute({1, 2, 0}));
    };
    const at::Tensor want = partial(w);
    at::Tensor best_max = org_max.clone();
    at::Tensor best_err = at::full_like(org_max, std::numeric_limits<float>::infinity());
    for (int i = 0; i < steps; ++i) {
      const at::Tensor max_val = (org_max * (1.0 - static_cast<double>(i) / o.n_grid)).unsqueeze(-1);
      const at::Tensor cur = at::max(at::min(w, max_val), -max_val);
      const at::Tensor q = awq_pseudo_quantize(cur.reshape({n, in}), o, tensor);
      const at::Tensor err = (partial(q) - want).pow(2).mean(1).t();  // [n, groups]
      const at::Tensor better = err < best_err;
      best_err = at::where(better, err, best_err);
      best_max = at::where(better, max_val.squeeze(-1), best_max);
    }
    const at::Tensor m = best_max.unsqueeze(-1);
    result.narrow(0, o0, n).copy_(at::max(at::min(w, m), -m).view({n, in}));
  }
  return result;
}

namespace {

// What the float layer's Linears saw: the mean |x| of every input channel
// over all calibration tokens, and the inputs of the search batches.
struct LayerInputs {
  std::array<at::Tensor, 4> mean;                 // float [in] per slot
  std::vector<at::Tensor> x, mask;                // search batches: layer input [b, t, h] and mask
  std::vector<at::Tensor> valid;                  // search batches: real-token rows
  std::array<at::Tensor, 4> rows;                 // search batches: each slot's input, real tokens only [T, in]
};

LayerInputs collect(const BertModel& model, int64_t layer, LayerCalibration& cal, const AwqOptions& o) {
  c10::InferenceMode guard;
  LayerInputs in;
  std::array<at::Tensor, 4> sums;
  std::array<std::vector<at::Tensor>, 4> rows;
  int64_t tokens = 0, search = 0;
  for (size_t b = 0; b < cal.hidden.size(); ++b) {
    const bool keep = search < o.search_tokens;
    const LinearObserver observe = [&](int64_t, LinearSlot slot, const at::Tensor& x) {
      const size_t s = static_cast<size_t>(slot);
      at::Tensor r = x.reshape({-1, x.size(-1)}).index_select(0, cal.valid[b]).to(at::kFloat);
      at::Tensor a = r.abs().sum(0, false, at::kDouble);
      sums[s] = sums[s].defined() ? sums[s].add_(a) : a;
      if (keep) rows[s].push_back(r.cpu());
    };
    if (keep) {
      // The blocks are judged in fp32 on the CPU, beside the weights, whatever
      // the model computes in and wherever (a bf16 model's hidden states
      // widened exactly).
      in.x.push_back(cal.hidden[b].to(at::kCPU, at::kFloat));
      in.mask.push_back(cal.mask_bias[b].to(at::kCPU, at::kFloat));
      in.valid.push_back(cal.valid[b].cpu());
      search += cal.valid[b].size(0);
    }
    tokens += cal.valid[b].size(0);
    cal.hidden[b] = model.layer_forward(layer, cal.hidden[b], cal.mask_bias[b], &observe);
  }
  if (tokens == 0) fail("AWQ: the calibration has no tokens");
  for (size_t s = 0; s < 4; ++s) {
    in.mean[s] = (sums[s] / static_cast<double>(tokens)).to(at::kCPU, at::kFloat);
    in.rows[s] = at::cat(rows[s]);
  }
  return in;
}

}  // namespace

AwqLayer awq_layer(const BertModel& model, const StateDict& weights, int64_t layer, LayerCalibration& calibration,
                   const AwqOptions& o, bool clip) {
  const LayerInputs in = collect(model, layer, calibration, o);
  c10::InferenceMode guard;
  AwqLayer r;
  for (LinearSlot slot : LINEAR_SLOTS) r.params[static_cast<size_t>(slot)] = model.linear_params(weights, layer, slot);
  LinearParams& qkv = r.params[0];
  LinearParams& attn_out = r.params[1];
  LinearParams& ffn_in = r.params[2];
  LinearParams& ffn_out = r.params[3];
  const int64_t h = model.config().hidden_size, heads = model.config().num_attention_heads;
  const std::string prefix = model.weight_prefix();
  auto name = [&](const LinearParams& p) { return prefix + p.name + ".weight"; };

  // The blocks each scale is judged on (float except the Linears searched).
  const auto qkv_block = [&](const std::vector<at::Tensor>& w) {
    std::vector<at::Tensor> outs;
    for (size_t b = 0; b < in.x.size(); ++b) {
      const at::Tensor ctx = fused_qkv_attention(at::linear(in.x[b], w[0], qkv.bias).contiguous(), in.mask[b], heads);
      outs.push_back(at::linear(ctx.reshape({-1, h}).index_select(0, in.valid[b]), attn_out.weight, attn_out.bias));
    }
    return at::cat(outs);
  };
  const auto attn_out_block = [&](const std::vector<at::Tensor>& w) {
    return at::linear(in.rows[1], w[0], attn_out.bias);
  };
  const auto ffn_block = [&](const std::vector<at::Tensor>& w) {
    return at::linear(apply_activation(at::linear(in.rows[2], w[0], ffn_in.bias), ffn_in.activation), ffn_out.weight,
                      ffn_out.bias);
  };
  const auto ffn_out_block = [&](const std::vector<at::Tensor>& w) {
    return at::linear(in.rows[3], w[0], ffn_out.bias);
  };
  const at::Tensor s_qkv = awq_search_scale(in.mean[0], {qkv.weight}, qkv_block, o, name(qkv), &r.ratio[0]);
  const at::Tensor s_out = awq_search_scale(in.mean[1], {attn_out.weight}, attn_out_block, o, name(attn_out), &r.ratio[1]);
  const at::Tensor s_in = awq_search_scale(in.mean[2], {ffn_in.weight}, ffn_block, o, name(ffn_in), &r.ratio[2]);
  const at::Tensor s_fo = awq_search_scale(in.mean[3], {ffn_out.weight}, ffn_out_block, o, name(ffn_out), &r.ratio[3]);

  // Apply them all: W diag(s); x / s by the Linear itself, or folded into V.
  qkv.weight = qkv.weight * s_qkv.unsqueeze(0);
  qkv.weight.narrow(0, 2 * h, h).div_(s_out.unsqueeze(1));
  if (qkv.bias.defined()) {
    qkv.bias = qkv.bias.clone();
    qkv.bias.narrow(0, 2 * h, h).div_(s_out);
  }
  attn_out.weight = attn_out.weight * s_out.unsqueeze(0);
  ffn_in.weight = ffn_in.weight * s_in.unsqueeze(0);
  ffn_out.weight = ffn_out.weight * s_fo.unsqueeze(0);
  r.divisor = {s_qkv, at::Tensor(), s_in, s_fo};

  if (clip) {
    // On the scaled weights and the inputs they now see. Q and K rows stay unclipped.
    qkv.weight.narrow(0, 2 * h, h).copy_(awq_clip(qkv.weight.narrow(0, 2 * h, h), in.rows[0] / s_qkv, o, name(qkv)));
    attn_out.weight = awq_clip(attn_out.weight, in.rows[1] / s_out, o, name(attn_out));  // V's rows now carry 1 / s
    ffn_in.weight = awq_clip(ffn_in.weight, in.rows[2] / s_in, o, name(ffn_in));
    ffn_out.weight = awq_clip(ffn_out.weight, in.rows[3] / s_fo, o, name(ffn_out));
  }
  return r;
}

}  // namespace embeval
