#include "tests/checkpoint_writer.h"

#include <cstring>
#include <fstream>
#include <random>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/jit/serialization/pickle.h>
#include <utf8proc.h>

#include "harness/error.h"

namespace embeval::test {
namespace fs = std::filesystem;
namespace {

struct Named {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

class Weights {
 public:
  explicit Weights(uint32_t seed) : rng_(seed) {}
  // Normal(mean, std) values: std ~ 1/sqrt(fan_in) keeps activations O(1).
  void add(const std::string& name, std::vector<int64_t> shape, float mean, float std) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::normal_distribution<float> d(mean, std);
    Named t{name, std::move(shape), std::vector<float>(static_cast<size_t>(n))};
    for (auto& v : t.values) v = d(rng_);
    list.push_back(std::move(t));
  }
  std::vector<Named> list;

 private:
  std::mt19937 rng_;
};

std::string encode_values(const std::vector<float>& v, TensorDtype dtype) {
  std::string out;
  if (dtype == TENSOR_DTYPE_F32) {
    out.resize(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  out.resize(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t h = dtype == TENSOR_DTYPE_F16 ? float_to_half(v[i]) : float_to_bf16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

at::ScalarType scalar_type(TensorDtype d) {
  return d == TENSOR_DTYPE_F16 ? at::kHalf : d == TENSOR_DTYPE_BF16 ? at::kBFloat16 : at::kFloat;
}

void write_json(const fs::path& file, const nlohmann::ordered_json& j) {
  std::ofstream out(file);
  out << j.dump(2) << "\n";
}

void write_weights(const fs::path& dir, const std::vector<Named>& list, const std::string& format, TensorDtype dtype) {
  if (format == "bin") {
    c10::Dict<std::string, at::Tensor> dict;
    for (const auto& t : list) {
      at::Tensor x = at::from_blob(const_cast<float*>(t.values.data()), t.shape, at::kFloat).clone();
      dict.insert(t.name, x.to(scalar_type(dtype)));
    }
    std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
    std::ofstream out(dir / "pytorch_model.bin", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return;
  }
  std::vector<std::vector<SafetensorsTensor>> shards(format == "sharded" ? 2 : 1);
  for (size_t i = 0; i < list.size(); ++i)
    shards[i % shards.size()].push_back({list[i].name, dtype, list[i].shape, encode_values(list[i].values, dtype)});
  // Checkpoints saved by transformers < 4.31 also hold the int64 buffer
  // embeddings.position_ids [1, positions] (listed in a sharded index too).
  const std::string& first = list.front().name;
  const std::string prefix = first.substr(0, first.find("embeddings."));
  const int64_t positions = [&] {
    for (const auto& t : list)
      if (t.name == prefix + "embeddings.position_embeddings.weight") return t.shape[0];
    return int64_t{0};
  }();
  if (positions > 0) {
    std::string ids(static_cast<size_t>(positions) * 8, '\0');
    for (int64_t i = 0; i < positions; ++i) std::memcpy(ids.data() + 8 * i, &i, 8);
    shards.back().push_back({prefix + "embeddings.position_ids", TENSOR_DTYPE_I64, {1, positions}, ids});
  }
  if (shards.size() == 1) {
    write_safetensors(dir / "model.safetensors", shards[0], {{"format", "pt"}});
    return;
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::ordered_json::object()}};
  for (size_t s = 0; s < shards.size(); ++s) {
    std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards.size());
    write_safetensors(dir / name, shards[s], {{"format", "pt"}});
    for (const auto& t : shards[s]) index["weight_map"][t.name] = name;
  }
  write_json(dir / "model.safetensors.index.json", index);
}

}  // namespace

void write_checkpoint(const fs::path& dir, const TinyCheckpoint& c) {
  fs::create_directories(dir);
  const bool xlmr = c.model_type == "xlm-roberta";
  const int64_t h = c.hidden_size, ff = c.intermediate_size;
  nlohmann::ordered_json config = {{"architectures", {xlmr ? "XLMRobertaModel" : "BertModel"}},
                                   {"model_type", c.model_type},
                                   {"vocab_size", c.vocab_size},
                                   {"hidden_size", h},
                                   {"num_hidden_layers", c.num_layers},
                                   {"num_attention_heads", c.num_heads},
                                   {"intermediate_size", ff},
                                   {"hidden_act", c.hidden_act},
                                   {"max_position_embeddings", c.max_position_embeddings},
                                   {"type_vocab_size", c.type_vocab_size},
                                   {"pad_token_id", c.pad_token_id},
                                   {"layer_norm_eps", 1e-12},
                                   {"position_embedding_type", "absolute"},
                                   {"torch_dtype", c.dtype == TENSOR_DTYPE_F32   ? "float32"
                                                   : c.dtype == TENSOR_DTYPE_F16 ? "float16"
                                                                                 : "bfloat16"}};
  write_json(dir / "config.json", config);

  Weights w(c.seed);
  const std::string p = c.prefix;
  const float wstd = 1.0f / std::sqrt(static_cast<float>(h)), fstd = 1.0f / std::sqrt(static_cast<float>(ff));
  w.add(p + "embeddings.word_embeddings.weight", {c.vocab_size, h}, 0, 1);
  w.add(p + "embeddings.position_embeddings.weight", {c.max_position_embeddings, h}, 0, 0.5f);
  w.add(p + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, h}, 0, 0.5f);
  w.add(p + "embeddings.LayerNorm.weight", {h}, 1, 0.2f);
  w.add(p + "embeddings.LayerNorm.bias", {h}, 0, 0.2f);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string l = fmt::format("{}encoder.layer.{}.", p, i);
    for (const char* m : {"query", "key", "value"}) {
      w.add(l + "attention.self." + m + ".weight", {h, h}, 0, wstd);
      w.add(l + "attention.self." + m + ".bias", {h}, 0, 0.2f);
    }
    w.add(l + "attention.output.dense.weight", {h, h}, 0, wstd);
    w.add(l + "attention.output.dense.bias", {h}, 0, 0.2f);
    w.add(l + "attention.output.LayerNorm.weight", {h}, 1, 0.2f);
    w.add(l + "attention.output.LayerNorm.bias", {h}, 0, 0.2f);
    w.add(l + "intermediate.dense.weight", {ff, h}, 0, wstd);
    w.add(l + "intermediate.dense.bias", {ff}, 0, 0.2f);
    w.add(l + "output.dense.weight", {h, ff}, 0, fstd);
    w.add(l + "output.dense.bias", {h}, 0, 0.2f);
    w.add(l + "output.LayerNorm.weight", {h}, 1, 0.2f);
    w.add(l + "output.LayerNorm.bias", {h}, 0, 0.2f);
  }
  if (c.extra_heads) {
    w.add(p + "pooler.dense.weight", {h, h}, 0, wstd);
    w.add(p + "pooler.dense.bias", {h}, 0, 0.2f);
    w.add("cls.predictions.bias", {c.vocab_size}, 0, 0.2f);
  }
  write_weights(dir, w.list, c.format, c.dtype);

  std::ofstream vocab(dir / "vocab.txt");
  for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) vocab << s << "\n";
  for (int64_t i = 5; i < c.vocab_size; ++i) vocab << "t" << i << "\n";
  vocab.close();

  if (c.max_seq_length > 0)
    write_json(dir / "sentence_bert_config.json", {{"max_seq_length", c.max_seq_length}, {"do_lower_case", false}});
  if (!c.similarity_fn_name.empty() || !c.prompts_json.empty()) {
    nlohmann::ordered_json st = {{"prompts", c.prompts_json.empty() ? nlohmann::ordered_json::object()
                                                                    : nlohmann::ordered_json::parse(c.prompts_json)},
                                 {"default_prompt_name", c.default_prompt_name.empty()
                                                             ? nlohmann::ordered_json()
                                                             : nlohmann::ordered_json(c.default_prompt_name)}};
    st["similarity_fn_name"] = c.similarity_fn_name.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(c.similarity_fn_name);
    write_json(dir / "config_sentence_transformers.json", st);
  }
  if (!c.modules_json) return;

  nlohmann::ordered_json modules = nlohmann::ordered_json::array();
  modules.push_back({{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}});
  modules.push_back(
      {{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}});
  fs::create_directories(dir / "1_Pooling");
  auto on = [&](const char* mode) { return std::find(c.pooling.begin(), c.pooling.end(), mode) != c.pooling.end(); };
  write_json(dir / "1_Pooling" / "config.json", {{"word_embedding_dimension", h},
                                                 {"pooling_mode_cls_token", on("cls")},
                                                 {"pooling_mode_mean_tokens", on("mean")},
                                                 {"pooling_mode_max_tokens", on("max")},
                                                 {"pooling_mode_mean_sqrt_len_tokens", on("mean_sqrt_len")},
                                                 {"pooling_mode_weightedmean_tokens", on("weighted_mean")},
                                                 {"pooling_mode_lasttoken", on("last_token")},
                                                 {"include_prompt", c.include_prompt}});
  int idx = 2;
  if (c.dense_out > 0) {
    const int64_t in = h * static_cast<int64_t>(c.pooling.size());
    fs::create_directories(dir / "2_Dense");
    write_json(dir / "2_Dense" / "config.json", {{"in_features", in},
                                                 {"out_features", c.dense_out},
                                                 {"bias", true},
                                                 {"activation_function", c.dense_activation}});
    Weights dw(c.seed + 1000);
    dw.add("linear.weight", {c.dense_out, in}, 0, 1.0f / std::sqrt(static_cast<float>(in)));
    dw.add("linear.bias", {c.dense_out}, 0, 0.2f);
    write_weights(dir / "2_Dense", dw.list, "safetensors", TENSOR_DTYPE_F32);
    modules.push_back(
        {{"idx", idx}, {"name", std::to_string(idx)}, {"path", "2_Dense"}, {"type", "sentence_transformers.models.Dense"}});
    ++idx;
  }
  if (c.normalize) {
    std::string path = fmt::format("{}_Normalize", idx);
    modules.push_back(
        {{"idx", idx}, {"name", std::to_string(idx)}, {"path", path}, {"type", "sentence_transformers.models.Normalize"}});
  }
  write_json(dir / "modules.json", modules);
}

namespace {

class CharTokenizer : public Tokenizer {
 public:
  CharTokenizer(int64_t vocab, bool xlmr) : vocab_(vocab), xlmr_(xlmr) {}
  std::vector<int32_t> encode(const std::string& text, int64_t max_length) const override {
    std::vector<int32_t> plain = encode_plain(text);
    if (static_cast<int64_t>(plain.size()) > max_length - 2) plain.resize(static_cast<size_t>(max_length - 2));
    std::vector<int32_t> out{xlmr_ ? 0 : 2};
    out.insert(out.end(), plain.begin(), plain.end());
    out.push_back(xlmr_ ? 2 : 3);
    return out;
  }
  std::vector<int32_t> encode_plain(const std::string& text) const override {
    std::vector<int32_t> out;
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
    utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
    while (left > 0) {
      utf8proc_int32_t cp;
      utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
      if (n <= 0) n = 1, cp = 0xfffd;
      p += n, left -= n;
      if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') continue;
      out.push_back(static_cast<int32_t>(5 + cp % (vocab_ - 5)));
    }
    return out;
  }
  int32_t pad_id() const override { return xlmr_ ? 1 : 0; }
  int64_t vocab_size() const override { return vocab_; }
  std::string describe() const override { return fmt::format("test chars ({} ids)", vocab_); }

 private:
  int64_t vocab_;
  bool xlmr_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_char_tokenizer(int64_t vocab_size, bool xlmr) {
  return std::make_unique<CharTokenizer>(vocab_size, xlmr);
}

}  // namespace embeval::test
