#include "runners/bert/bert_model.h"

#include <cmath>
#include <limits>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/error.h"
#include "runners/bert/bert_layer_blocks.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/checkpoint/json_config.h"
#include "runners/kernels/attention.h"
#include "runners/kernels/layer_norm.h"
#include "runners/kernels/packed_linear.h"

namespace embeval {
namespace {

// Where transformers' base models keep their weights inside task models
// (BertForMaskedLM -> bert., XLMRobertaModel in a wrapper -> roberta.), or
// sentence-transformers exports (model.).
const char* const PREFIXES[] = {"", "bert.", "roberta.", "model."};

struct Layer {
  // qkv: query, key and value fused [3 * hidden, hidden]; ffn_in applies the activation.
  std::unique_ptr<Linear> linears[4];  // indexed by LinearSlot
  at::Tensor attn_ln_w, attn_ln_b, ffn_ln_w, ffn_ln_b;
  const Linear& operator[](LinearSlot s) const { return *linears[static_cast<int>(s)]; }
};

// The checkpoint names of a slot's tensors (without the model prefix).
std::vector<std::string> slot_tensor_names(int64_t layer, LinearSlot slot) {
  const std::string p = fmt::format("encoder.layer.{}.", layer);
  switch (slot) {
    case LinearSlot::qkv:
      return {p + "attention.self.query", p + "attention.self.key", p + "attention.self.value"};
    case LinearSlot::attn_out: return {p + "attention.output.dense"};
    case LinearSlot::ffn_in: return {p + "intermediate.dense"};
    case LinearSlot::ffn_out: return {p + "output.dense"};
  }
  return {};
}

LinearActivation linear_activation(Activation a) {
  switch (a) {
    case ACTIVATION_GELU: return LinearActivation::gelu_erf;
    case ACTIVATION_GELU_TANH: return LinearActivation::gelu_tanh;
    case ACTIVATION_RELU: return LinearActivation::relu;
  }
  return LinearActivation::none;
}

}  // namespace

const char* linear_slot_name(LinearSlot slot) {
  switch (slot) {
    case LinearSlot::qkv: return "qkv";
    case LinearSlot::attn_out: return "attn_out";
    case LinearSlot::ffn_in: return "ffn_in";
    case LinearSlot::ffn_out: return "ffn_out";
  }
  return "?";
}

int64_t BertConfig::max_input_length() const {
  return family == MODEL_FAMILY_XLM_ROBERTA ? max_position_embeddings - pad_token_id - 1 : max_position_embeddings;
}

BertConfig read_bert_config(const std::filesystem::path& config_json) {
  JsonConfig j(config_json);
  BertConfig c;
  c.model_type = j.get_string("model_type");
  if (c.model_type == "bert") {
    c.family = MODEL_FAMILY_BERT;
  } else if (c.model_type == "xlm-roberta") {
    c.family = MODEL_FAMILY_XLM_ROBERTA;
  } else {
    fail("{}: model_type \"{}\" is not supported; embeval runs bert, xlm-roberta", config_json.string(), c.model_type);
  }
  const bool xlmr = c.family == MODEL_FAMILY_XLM_ROBERTA;
  c.vocab_size = j.get_int("vocab_size");
  c.hidden_size = j.get_int("hidden_size");
  c.num_hidden_layers = j.get_int("num_hidden_layers");
  c.num_attention_heads = j.get_int("num_attention_heads");
  c.intermediate_size = j.get_int("intermediate_size");
  c.max_position_embeddings = j.get_int("max_position_embeddings");
  // Defaults of transformers' BertConfig / XLMRobertaConfig.
  c.type_vocab_size = j.get_int("type_vocab_size", 2);
  c.pad_token_id = j.get_int("pad_token_id", xlmr ? 1 : 0);
  c.layer_norm_eps = j.get_double("layer_norm_eps", 1e-12);
  c.hidden_act_name = j.get_string("hidden_act", "gelu");
  c.torch_dtype = j.get_string("torch_dtype", "");
  if (c.hidden_act_name == "gelu")
    c.hidden_act = ACTIVATION_GELU;
  else if (c.hidden_act_name == "gelu_new" || c.hidden_act_name == "gelu_pytorch_tanh")
    c.hidden_act = ACTIVATION_GELU_TANH;
  else if (c.hidden_act_name == "relu")
    c.hidden_act = ACTIVATION_RELU;
  else
    j.fail_field("hidden_act", fmt::format("is \"{}\"; expected gelu, gelu_new, gelu_pytorch_tanh or relu",
                                           c.hidden_act_name));
  const std::string pos = j.get_string("position_embedding_type", "absolute");
  if (pos != "absolute") j.fail_field("position_embedding_type", fmt::format("is \"{}\"; expected absolute", pos));
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) j.fail_field(key, fmt::format("is {}; expected a positive integer", v));
  };
  positive("vocab_size", c.vocab_size);
  positive("hidden_size", c.hidden_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_attention_heads", c.num_attention_heads);
  positive("intermediate_size", c.intermediate_size);
  positive("max_position_embeddings", c.max_position_embeddings);
  positive("type_vocab_size", c.type_vocab_size);
  if (c.hidden_size % c.num_attention_heads != 0)
    j.fail_field("hidden_size", fmt::format("{} is not a multiple of num_attention_heads {}", c.hidden_size,
                                            c.num_attention_heads));
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size)
    j.fail_field("pad_token_id", fmt::format("{} is outside the vocabulary [0, {})", c.pad_token_id, c.vocab_size));
  if (c.max_input_length() < 2)
    j.fail_field("max_position_embeddings", fmt::format("{} leaves no room for an input", c.max_position_embeddings));
  if (!(c.layer_norm_eps > 0)) j.fail_field("layer_norm_eps", "must be positive");
  return c;
}

struct BertModel::Impl {
  BertConfig config;
  at::ScalarType dtype = at::kFloat;
  c10::Device device = c10::Device(c10::kCPU);
  std::string prefix;
  int64_t n_parameters = 0;
  at::Tensor word_emb, pos_emb, type_emb0, emb_ln_w, emb_ln_b;
  std::vector<Layer> layers;
};

BertModel::BertModel(const BertConfig& config, const StateDict& weights, at::ScalarType dtype, c10::Device device,
                     const std::string& where)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.config = config;
  m.dtype = dtype;
  m.device = device;

  bool found = false;
  for (const char* p : PREFIXES) {
    const std::string name = std::string(p) + "embeddings.word_embeddings.weight";
    if (weights.tensors.count(name) || weights.skipped.count(name)) {
      m.prefix = p;
      found = true;
      break;
    }
  }
  if (!found)
    fail("{}: missing tensor \"embeddings.word_embeddings.weight\" (also looked for it under bert., roberta., "
         "model.); is this a BERT / XLM-R checkpoint?",
         where);

  const auto place = at::TensorOptions().dtype(dtype).device(device);
  // Looks a tensor up (old TF-converted checkpoints name LayerNorm
  // parameters gamma / beta, which transformers renames on load).
  auto take = [&](const std::string& name, std::vector<int64_t> shape) -> at::Tensor {
    const std::string full = m.prefix + name;
    std::string alt;
    if (full.find("LayerNorm") != std::string::npos) {
      if (full.size() > 7 && full.compare(full.size() - 7, 7, ".weight") == 0)
        alt = full.substr(0, full.size() - 7) + ".gamma";
      else if (full.size() > 5 && full.compare(full.size() - 5, 5, ".bias") == 0)
        alt = full.substr(0, full.size() - 5) + ".beta";
    }
    const at::Tensor& t = required_tensor(weights, full, where, alt);
    const std::string& stored = weights.tensors.count(full) ? full : alt;
    auto origin = weights.origin.find(stored);
    const std::string file = origin != weights.origin.end() ? origin->second.string() : where;
    if (t.sizes().vec() != shape)
      fail("{}: tensor \"{}\" has shape [{}]; config.json implies [{}]", file, stored, fmt::join(t.sizes(), ", "),
           fmt::join(shape, ", "));
    require_finite(t, file, stored);
    m.n_parameters += t.numel();
    return t;
  };
  const int64_t h = config.hidden_size, ff = config.intermediate_size;
  m.word_emb = take("embeddings.word_embeddings.weight", {config.vocab_size, h}).to(place);
  m.pos_emb = take("embeddings.position_embeddings.weight", {config.max_position_embeddings, h}).to(place);
  m.type_emb0 = take("embeddings.token_type_embeddings.weight", {config.type_vocab_size, h})[0].to(place);
  m.emb_ln_w = take("embeddings.LayerNorm.weight", {h}).to(place);
  m.emb_ln_b = take("embeddings.LayerNorm.bias", {h}).to(place);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = fmt::format("encoder.layer.{}.", i);
    Layer l;
    at::Tensor qw = take(p + "attention.self.query.weight", {h, h});
    at::Tensor kw = take(p + "attention.self.key.weight", {h, h});
    at::Tensor vw = take(p + "attention.self.value.weight", {h, h});
    at::Tensor qb = take(p + "attention.self.query.bias", {h});
    at::Tensor kb = take(p + "attention.self.key.bias", {h});
    at::Tensor vb = take(p + "attention.self.value.bias", {h});
    l.linears[0] = std::make_unique<PackedLinear>(at::cat({qw, kw, vw}, 0).to(place), at::cat({qb, kb, vb}, 0).to(place),
                                                  LinearActivation::none);
    // One statement per tensor: errors name them in file order (argument
    // evaluation order is unspecified).
    at::Tensor ow = take(p + "attention.output.dense.weight", {h, h});
    at::Tensor ob = take(p + "attention.output.dense.bias", {h});
    l.attn_ln_w = take(p + "attention.output.LayerNorm.weight", {h}).to(place);
    l.attn_ln_b = take(p + "attention.output.LayerNorm.bias", {h}).to(place);
    at::Tensor iw = take(p + "intermediate.dense.weight", {ff, h});
    at::Tensor ib = take(p + "intermediate.dense.bias", {ff});
    at::Tensor fw = take(p + "output.dense.weight", {h, ff});
    at::Tensor fb = take(p + "output.dense.bias", {h});
    l.ffn_ln_w = take(p + "output.LayerNorm.weight", {h}).to(place);
    l.ffn_ln_b = take(p + "output.LayerNorm.bias", {h}).to(place);
    l.linears[1] = std::make_unique<PackedLinear>(ow.to(place), ob.to(place), LinearActivation::none);
    l.linears[2] = std::make_unique<PackedLinear>(iw.to(place), ib.to(place), linear_activation(config.hidden_act));
    l.linears[3] = std::make_unique<PackedLinear>(fw.to(place), fb.to(place), LinearActivation::none);
    m.layers.push_back(std::move(l));
  }
}

BertModel::~BertModel() = default;

const BertConfig& BertModel::config() const { return impl_->config; }
int64_t BertModel::n_parameters() const { return impl_->n_parameters; }
at::ScalarType BertModel::dtype() const { return impl_->dtype; }
c10::Device BertModel::device() const { return impl_->device; }
const std::string& BertModel::weight_prefix() const { return impl_->prefix; }
std::string BertModel::linear_implementation() const {
  return impl_->layers.empty() ? "none" : impl_->layers.front()[LinearSlot::qkv].implementation();
}

const Linear& BertModel::linear(int64_t layer, LinearSlot slot) const {
  EMBEVAL_ASSERT(layer >= 0 && layer < static_cast<int64_t>(impl_->layers.size()));
  return impl_->layers[static_cast<size_t>(layer)][slot];
}

LinearParams BertModel::linear_params(const StateDict& weights, int64_t layer, LinearSlot slot) const {
  LinearParams p;
  std::vector<at::Tensor> w, b;
  const std::vector<std::string> names = slot_tensor_names(layer, slot);
  for (const std::string& n : names) {
    w.push_back(required_tensor(weights, impl_->prefix + n + ".weight", "checkpoint").to(at::kFloat));
    b.push_back(required_tensor(weights, impl_->prefix + n + ".bias", "checkpoint").to(at::kFloat));
  }
  p.name = slot == LinearSlot::qkv ? fmt::format("encoder.layer.{}.attention.self.{{query,key,value}}", layer) : names[0];
  p.weight = at::cat(w, 0).contiguous();
  p.bias = at::cat(b, 0).contiguous();
  p.activation = slot == LinearSlot::ffn_in ? linear_activation(impl_->config.hidden_act) : LinearActivation::none;
  return p;
}

std::vector<std::string> BertModel::linear_names(int64_t layer, LinearSlot slot) const {
  std::vector<std::string> names = slot_tensor_names(layer, slot);
  for (std::string& n : names) n = impl_->prefix + n;
  return names;
}

void BertModel::set_linear(int64_t layer, LinearSlot slot, std::unique_ptr<Linear> op) {
  EMBEVAL_ASSERT(layer >= 0 && layer < static_cast<int64_t>(impl_->layers.size()) && op);
  impl_->layers[static_cast<size_t>(layer)].linears[static_cast<int>(slot)] = std::move(op);
}

int64_t BertModel::linear_weight_bytes() const {
  int64_t bytes = 0;
  for (const Layer& l : impl_->layers)
    for (const auto& op : l.linears) bytes += op->weight_bytes();
  return bytes;
}

at::Tensor BertModel::embed(const at::Tensor& input_ids) const {
  const Impl& m = *impl_;
  const BertConfig& c = m.config;
  c10::InferenceMode guard;
  const int64_t b = input_ids.size(0), t = input_ids.size(1);
  // Position ids: 0..t-1 for BERT; XLM-R numbers real tokens from
  // pad_token_id + 1 and gives padding pad_token_id (transformers'
  // create_position_ids_from_input_ids).
  at::Tensor positions;
  if (c.family == MODEL_FAMILY_XLM_ROBERTA) {
    at::Tensor real = input_ids.ne(c.pad_token_id).to(at::kLong);
    positions = at::cumsum(real, 1).mul_(real).add_(c.pad_token_id);
  } else {
    positions = at::arange(t, at::TensorOptions().dtype(at::kLong).device(m.device)).unsqueeze(0).expand({b, t});
  }
  // The values transformers adds: (word + type) + position (the last sum
  // is exact the other way round too). The position add and the LayerNorm
  // run as one (libtorch 1.13's bf16 LayerNorm took 14-15 ms of bert-base's
  // batch-32 embeddings, fp32's 4.7); fp32 is what ATen gives, as before.
  // bf16 on the CPU: the three steps in one pass a token (layer_norm.h).
  if (at::Tensor y = embed_layer_norm(m.word_emb, m.type_emb0, m.pos_emb, input_ids, positions, m.emb_ln_w,
                                      m.emb_ln_b, c.layer_norm_eps);
      y.defined())
    return y;
  at::Tensor x = at::embedding(m.word_emb, input_ids).add_(m.type_emb0);
  return add_layer_norm(at::embedding(m.pos_emb, positions), x, m.emb_ln_w, m.emb_ln_b, c.layer_norm_eps);
}

at::Tensor BertModel::mask_bias(const at::Tensor& attention_mask) const {
  const Impl& m = *impl_;
  c10::InferenceMode guard;
  // Additive mask [b, 1, 1, t]: 0 on tokens, the dtype's lowest value on padding.
  const double lowest = m.dtype == at::kHalf       ? -65504.0
                        : m.dtype == at::kBFloat16 ? -3.3895313892515355e38
                                                   : static_cast<double>(std::numeric_limits<float>::lowest());
  return (1.0 - attention_mask.to(m.dtype)).mul_(lowest).view({attention_mask.size(0), 1, 1, attention_mask.size(1)});
}

at::Tensor BertModel::layer_forward(int64_t layer, const at::Tensor& x, const at::Tensor& mask,
                                    const LinearObserver* observer) const {
  const Impl& m = *impl_;
  const BertConfig& c = m.config;
  c10::InferenceMode guard;
  const Layer& l = m.layers[static_cast<size_t>(layer)];
  auto run = [&](LinearSlot s, const at::Tensor& in) {
    if (observer) (*observer)(layer, s, in);
    return l[s](in);
  };
  // The whole layer a block of rows at a time on each thread where the
  // kernels can (bert_layer_blocks.h); else the projection and the
  // attention block by block (attention.h). An observer sees each Linear's
  // whole input.
  if (!observer) {
    const LayerBlockParts parts{l[LinearSlot::qkv], l[LinearSlot::attn_out], l[LinearSlot::ffn_in],
                                l[LinearSlot::ffn_out], l.attn_ln_w, l.attn_ln_b, l.ffn_ln_w, l.ffn_ln_b,
                                c.layer_norm_eps, c.num_attention_heads, c.intermediate_size};
    if (at::Tensor out = blocked_bert_layer(parts, x, mask); out.defined()) return out;
  }
  at::Tensor ctx = observer ? at::Tensor() : blocked_qkv_attention(l[LinearSlot::qkv], x, mask, c.num_attention_heads);
  if (!ctx.defined()) ctx = fused_qkv_attention(run(LinearSlot::qkv, x), mask, c.num_attention_heads);
  at::Tensor y = add_layer_norm(run(LinearSlot::attn_out, ctx), x, l.attn_ln_w, l.attn_ln_b, c.layer_norm_eps);
  // A fused FFN where the kernels have one (W8A8); an observer sees each input.
  at::Tensor h = observer ? at::Tensor() : l[LinearSlot::ffn_in].fused_with(l[LinearSlot::ffn_out], y);
  if (!h.defined()) h = run(LinearSlot::ffn_out, run(LinearSlot::ffn_in, y));
  return add_layer_norm(h, y, l.ffn_ln_w, l.ffn_ln_b, c.layer_norm_eps);
}

at::Tensor BertModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) const {
  c10::InferenceMode guard;
  at::Tensor x = embed(input_ids);
  const at::Tensor mask = mask_bias(attention_mask);
  for (int64_t i = 0; i < static_cast<int64_t>(impl_->layers.size()); ++i) x = layer_forward(i, x, mask);
  return x;
}

}  // namespace embeval
