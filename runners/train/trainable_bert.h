#pragma once
// A BERT encoder with autograd (libtorch's C++ frontend) for `embeval
// train`: the architecture the loader reads (runners/bert/bert_model.h:
// word + position + token-type-0 embeddings, LayerNorm, post-LN layers with
// GELU), parameters named as Hugging Face's BertModel names them, so
// state_dict() is a checkpoint the normal loader takes. Initialised as
// transformers does (normal(0, 0.02) weights, zero biases, LayerNorm 1 / 0);
// dropout (config, default 0.1) on hidden states and attention probabilities
// while training.
#include <cstdint>
#include <map>
#include <string>

#include <torch/torch.h>

namespace embeval {

struct TrainableBertConfig {
  int64_t vocab_size = 21128, hidden = 256, layers = 4, heads = 4, ffn = 1024, max_positions = 512;
  double dropout = 0.1, layer_norm_eps = 1e-12;
};

class TrainableBertImpl : public torch::nn::Module {
 public:
  explicit TrainableBertImpl(const TrainableBertConfig& config);
  // input_ids, attention_mask [b, t] int64 -> last hidden state [b, t, hidden].
  // position_ids [b, t] int64, where given, replace 0 .. t-1 (a window cut
  // from a longer text keeps the positions its tokens have in that text).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& position_ids = {});
  // Mean over the real tokens, L2-normalised: [b, hidden] (the shipped
  // pipeline: Pooling mean + Normalize).
  torch::Tensor embed(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                      const torch::Tensor& position_ids = {});
  // The MLM head's logits over the vocabulary (tied to the word embeddings)
  // for the hidden states of the positions `rows` (flattened [b * t] indices).
  torch::Tensor mlm_logits(const torch::Tensor& hidden, const torch::Tensor& rows);
  const TrainableBertConfig& config() const { return config_; }
  // Encoder parameters under their Hugging Face names (no MLM head).
  std::map<std::string, torch::Tensor> hf_state_dict() const;
  // Copies every encoder parameter from `weights` (Hugging Face names, any
  // float dtype); a missing or misshapen one throws naming it.
  void load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights);

 private:
  struct Layer {
    torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attn_out{nullptr}, ffn_in{nullptr},
        ffn_out{nullptr};
    torch::nn::LayerNorm attn_ln{nullptr}, ffn_ln{nullptr};
  };
  TrainableBertConfig config_;
  torch::nn::Embedding word{nullptr}, position{nullptr}, token_type{nullptr};
  torch::nn::LayerNorm emb_ln{nullptr};
  std::vector<Layer> layers_;
  torch::nn::Linear mlm_dense{nullptr};
  torch::nn::LayerNorm mlm_ln{nullptr};
  torch::Tensor mlm_bias;
  std::map<std::string, torch::Tensor> named_;  // Hugging Face name -> parameter
};
TORCH_MODULE(TrainableBert);

}  // namespace embeval
