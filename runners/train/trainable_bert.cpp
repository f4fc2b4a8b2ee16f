#include "runners/train/trainable_bert.h"

#include <cmath>

namespace embeval {
namespace nn = torch::nn;

namespace {

nn::Linear linear(int64_t in, int64_t out) {
  nn::Linear l(nn::LinearOptions(in, out));
  torch::NoGradGuard g;
  l->weight.normal_(0, 0.02);
  l->bias.zero_();
  return l;
}

nn::LayerNorm layer_norm(int64_t n, double eps) {
  return nn::LayerNorm(nn::LayerNormOptions({n}).eps(eps).elementwise_affine(true));
}

}  // namespace

TrainableBertImpl::TrainableBertImpl(const TrainableBertConfig& c) : config_(c) {
  TORCH_CHECK(c.hidden % c.heads == 0, "hidden size must be a multiple of the heads");
  auto emb = [&](int64_t n) {
    nn::Embedding e(nn::EmbeddingOptions(n, c.hidden));
    torch::NoGradGuard g;
    e->weight.normal_(0, 0.02);
    return e;
  };
  word = register_module("word_embeddings", emb(c.vocab_size));
  position = register_module("position_embeddings", emb(c.max_positions));
  token_type = register_module("token_type_embeddings", emb(2));
  emb_ln = register_module("embeddings_LayerNorm", layer_norm(c.hidden, c.layer_norm_eps));
  named_["embeddings.word_embeddings.weight"] = word->weight;
  named_["embeddings.position_embeddings.weight"] = position->weight;
  named_["embeddings.token_type_embeddings.weight"] = token_type->weight;
  named_["embeddings.LayerNorm.weight"] = emb_ln->weight;
  named_["embeddings.LayerNorm.bias"] = emb_ln->bias;
  for (int64_t i = 0; i < c.layers; ++i) {
    Layer l;
    const std::string p = "layer" + std::to_string(i) + "_";
    l.query = register_module(p + "query", linear(c.hidden, c.hidden));
    l.key = register_module(p + "key", linear(c.hidden, c.hidden));
    l.value = register_module(p + "value", linear(c.hidden, c.hidden));
    l.attn_out = register_module(p + "attn_out", linear(c.hidden, c.hidden));
    l.attn_ln = register_module(p + "attn_ln", layer_norm(c.hidden, c.layer_norm_eps));
    l.ffn_in = register_module(p + "ffn_in", linear(c.hidden, c.ffn));
    l.ffn_out = register_module(p + "ffn_out", linear(c.ffn, c.hidden));
    l.ffn_ln = register_module(p + "ffn_ln", layer_norm(c.hidden, c.layer_norm_eps));
    const std::string h = "encoder.layer." + std::to_string(i) + ".";
    auto put = [&](const std::string& name, const nn::Linear& m) {
      named_[h + name + ".weight"] = m->weight;
      named_[h + name + ".bias"] = m->bias;
    };
    put("attention.self.query", l.query);
    put("attention.self.key", l.key);
    put("attention.self.value", l.value);
    put("attention.output.dense", l.attn_out);
    put("intermediate.dense", l.ffn_in);
    put("output.dense", l.ffn_out);
    named_[h + "attention.output.LayerNorm.weight"] = l.attn_ln->weight;
    named_[h + "attention.output.LayerNorm.bias"] = l.attn_ln->bias;
    named_[h + "output.LayerNorm.weight"] = l.ffn_ln->weight;
    named_[h + "output.LayerNorm.bias"] = l.ffn_ln->bias;
    layers_.push_back(l);
  }
  // MLM head (BertLMPredictionHead): dense + GELU + LayerNorm, decoder tied
  // to the word embeddings. Used by the warm-up only; not shipped.
  mlm_dense = register_module("mlm_dense", linear(c.hidden, c.hidden));
  mlm_ln = register_module("mlm_ln", layer_norm(c.hidden, c.layer_norm_eps));
  mlm_bias = register_parameter("mlm_bias", torch::zeros({c.vocab_size}));
}

torch::Tensor TrainableBertImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask, const torch::Tensor& positions) {
  const TrainableBertConfig& c = config_;
  const int64_t b = ids.size(0), t = ids.size(1), d = c.hidden / c.heads;
  torch::Tensor pe;
  if (positions.defined()) {
    TORCH_CHECK(positions.sizes() == ids.sizes(), "position ids of shape ", positions.sizes(), " for ids of shape ", ids.sizes());
    TORCH_CHECK(positions.numel() == 0 || positions.max().item<int64_t>() < c.max_positions,
                "a position beyond the position table");
    pe = position(positions);
  } else {
    TORCH_CHECK(t <= c.max_positions, "sequence longer than the position table");
    pe = position(torch::arange(t, ids.options())).unsqueeze(0);
  }
  torch::Tensor x = word(ids) + pe + token_type->weight[0];
  x = torch::dropout(emb_ln(x), c.dropout, is_training());
  // Additive mask as transformers builds it: 0 on tokens, finfo.min on padding.
  const torch::Tensor bias =
      (1 - mask.to(x.dtype())).view({b, 1, 1, t}) * std::numeric_limits<float>::lowest();
  for (Layer& l : layers_) {
    auto heads = [&](const torch::Tensor& y) { return y.view({b, t, c.heads, d}).transpose(1, 2); };
    const torch::Tensor q = heads(l.query(x)), k = heads(l.key(x)), v = heads(l.value(x));
    torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(d)) + bias;
    torch::Tensor probs = torch::dropout(torch::softmax(scores, -1), c.dropout, is_training());
    torch::Tensor ctx = torch::matmul(probs, v).transpose(1, 2).reshape({b, t, c.hidden});
    x = l.attn_ln(torch::dropout(l.attn_out(ctx), c.dropout, is_training()) + x);
    torch::Tensor f = l.ffn_out(torch::gelu(l.ffn_in(x)));
    x = l.ffn_ln(torch::dropout(f, c.dropout, is_training()) + x);
  }
  return x;
}

torch::Tensor TrainableBertImpl::embed(const torch::Tensor& ids, const torch::Tensor& mask, const torch::Tensor& positions) {
  const torch::Tensor h = forward(ids, mask, positions);
  const torch::Tensor m = mask.to(h.dtype()).unsqueeze(-1);
  const torch::Tensor mean = (h * m).sum(1) / m.sum(1).clamp_min(1e-9);
  return torch::nn::functional::normalize(mean, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
}

torch::Tensor TrainableBertImpl::mlm_logits(const torch::Tensor& hidden, const torch::Tensor& rows) {
  const torch::Tensor h = hidden.reshape({-1, config_.hidden}).index_select(0, rows);
  return torch::nn::functional::linear(mlm_ln(torch::gelu(mlm_dense(h))), word->weight, mlm_bias);
}

std::map<std::string, torch::Tensor> TrainableBertImpl::hf_state_dict() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, t] : named_) out[name] = t.detach().clone();
  return out;
}

void TrainableBertImpl::load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) {
  torch::NoGradGuard g;
  for (auto& [name, param] : named_) {
    auto it = weights.find(name);
    TORCH_CHECK(it != weights.end(), "missing tensor ", name);
    TORCH_CHECK(it->second.sizes() == param.sizes(), "tensor ", name, " has shape ", it->second.sizes(), ", expected ",
                param.sizes());
    param.copy_(it->second.to(param.dtype()));
  }
}

}  // namespace embeval
