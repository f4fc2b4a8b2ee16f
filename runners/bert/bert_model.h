#pragma once
// The BERT / XLM-RoBERTa encoder stack of transformers' BertModel and
// XLMRobertaModel, written directly on ATen tensors: embeddings (word +
// token type 0 + absolute position) -> LayerNorm -> N x [self-attention ->
// add & LayerNorm -> FFN -> add & LayerNorm]. Inference only; the pooler and
// MLM heads are not loaded. Attention uses an additive mask (finfo.min on
// padding, as transformers does). On the CPU the Linear layers and the
// attention products run on oneDNN (runners/kernels/packed_linear.h, attention.h);
// elsewhere on ATen (at::scaled_dot_product_attention on libtorch 2.x).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "runners/kernels/linear.h"
#include "runners/kernels/packed_linear.h"

namespace embeval {

struct StateDict;

enum Activation { ACTIVATION_GELU, ACTIVATION_GELU_TANH, ACTIVATION_RELU };
enum ModelFamily { MODEL_FAMILY_BERT, MODEL_FAMILY_XLM_ROBERTA };

// config.json, with transformers' defaults for the optional fields.
struct BertConfig {
  std::string model_type;  // "bert" or "xlm-roberta"
  ModelFamily family = MODEL_FAMILY_BERT;
  int64_t vocab_size = 0, hidden_size = 0, num_hidden_layers = 0, num_attention_heads = 0, intermediate_size = 0;
  int64_t max_position_embeddings = 0, type_vocab_size = 2, pad_token_id = 0;
  double layer_norm_eps = 1e-12;
  Activation hidden_act = ACTIVATION_GELU;
  std::string hidden_act_name = "gelu";
  std::string torch_dtype;  // as stored, informational

  // Longest input the position table allows: XLM-R positions start at pad_token_id + 1.
  int64_t max_input_length() const;
};

// Reads and validates config.json; errors name the file and the field.
BertConfig read_bert_config(const std::filesystem::path& config_json);

// The four Linear layers of an encoder layer. Q, K and V share their input
// and run as one fused [3 * hidden, hidden] Linear (rows Q, then K, then V).
enum class LinearSlot { qkv, attn_out, ffn_in, ffn_out };
constexpr LinearSlot LINEAR_SLOTS[] = {LinearSlot::qkv, LinearSlot::attn_out, LinearSlot::ffn_in, LinearSlot::ffn_out};
const char* linear_slot_name(LinearSlot slot);  // "qkv", "attn_out", "ffn_in", "ffn_out"

// A Linear layer's float parameters as the checkpoint holds them.
struct LinearParams {
  std::string name;     // e.g. "encoder.layer.3.intermediate.dense" ("...attention.self.{query,key,value}" for qkv)
  at::Tensor weight;    // float32 [out, in] on the CPU
  at::Tensor bias;      // float32 [out]
  LinearActivation activation = LinearActivation::none;
};

// Token ids of calibration texts, padded on the right: [b, t] int64 each, on the model's device.
struct CalibrationBatch {
  at::Tensor input_ids, attention_mask;
};

// Called with the input of each Linear as the forward pass reaches it
// (calibration statistics); `input` is [..., in] in the model's dtype.
using LinearObserver = std::function<void(int64_t layer, LinearSlot slot, const at::Tensor& input)>;

class BertModel {
 public:
  // Takes the tensors it needs from `weights` (names with or without a
  // bert. / roberta. / model. prefix; others ignored), checks their shapes
  // against the config and moves them to `device` in `dtype`. `where` names
  // the checkpoint in errors.
  BertModel(const BertConfig& config, const StateDict& weights, at::ScalarType dtype, c10::Device device,
            const std::string& where);
  ~BertModel();
  BertModel(const BertModel&) = delete;
  BertModel& operator=(const BertModel&) = delete;

  // input_ids and attention_mask: [batch, seq] int64 on device(), padding
  // on the right; returns the last hidden state [batch, seq, hidden] in dtype().
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) const;

  const BertConfig& config() const;
  int64_t n_parameters() const;
  at::ScalarType dtype() const;
  c10::Device device() const;
  const std::string& weight_prefix() const;  // "", "bert.", "roberta." or "model."
  // What runs the Linear layers: "amx:bf16", "avx512_bf16:embeval bf16", "onednn:<kernel>" or "aten"
  // (runners/kernels/packed_linear.h).
  std::string linear_implementation() const;

  // The forward pass a layer at a time (forward() is embed, then every
  // layer_forward): quantizers calibrate layer by layer with these.
  at::Tensor embed(const at::Tensor& input_ids) const;           // [b, t, hidden] after the embedding LayerNorm
  at::Tensor mask_bias(const at::Tensor& attention_mask) const;  // additive [b, 1, 1, t]
  at::Tensor layer_forward(int64_t layer, const at::Tensor& x, const at::Tensor& mask_bias,
                           const LinearObserver* observer = nullptr) const;

  // A layer's Linear and the float parameters it was built from (read again
  // from `weights`, which must be the state dict the model was loaded from).
  const Linear& linear(int64_t layer, LinearSlot slot) const;
  LinearParams linear_params(const StateDict& weights, int64_t layer, LinearSlot slot) const;
  // The checkpoint's names of a slot's Linear layers, weight prefix included
  // and ".weight" left off (query, key, value for qkv, in row order; one
  // name for the others).
  std::vector<std::string> linear_names(int64_t layer, LinearSlot slot) const;
  // Replaces one Linear (quantization); the new one must map the same widths.
  void set_linear(int64_t layer, LinearSlot slot, std::unique_ptr<Linear> op);
  // Bytes the encoder layers' Linear weights occupy as held now.
  int64_t linear_weight_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embeval
