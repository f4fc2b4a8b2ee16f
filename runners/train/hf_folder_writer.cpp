#include "runners/train/hf_folder_writer.h"

#include <fstream>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "harness/error.h"
#include "runners/checkpoint/safetensors_reader.h"

namespace embeval {
namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

namespace {

void write_json(const fs::path& file, const ordered_json& j) {
  std::ofstream out(file);
  out << j.dump(2) << '\n';
  if (!out) fail("{}: cannot write", file.string());
}

}  // namespace

void write_tokenizer_files(const fs::path& dir, const fs::path& vocab, int64_t max_length) {
  fs::create_directories(dir);
  if (!fs::is_regular_file(vocab)) fail("{}: no such vocabulary file", vocab.string());
  fs::copy_file(vocab, dir / "vocab.txt", fs::copy_options::overwrite_existing);
  write_json(dir / "tokenizer_config.json", {{"tokenizer_class", "BertTokenizer"},
                                             {"do_lower_case", true},
                                             {"tokenize_chinese_chars", true},
                                             {"strip_accents", nullptr},
                                             {"model_max_length", max_length},
                                             {"unk_token", "[UNK]"},
                                             {"sep_token", "[SEP]"},
                                             {"pad_token", "[PAD]"},
                                             {"cls_token", "[CLS]"},
                                             {"mask_token", "[MASK]"}});
  write_json(dir / "special_tokens_map.json", {{"unk_token", "[UNK]"},
                                               {"sep_token", "[SEP]"},
                                               {"pad_token", "[PAD]"},
                                               {"cls_token", "[CLS]"},
                                               {"mask_token", "[MASK]"}});
  write_json(dir / "sentence_bert_config.json", {{"max_seq_length", max_length}, {"do_lower_case", false}});
}

void write_model_files(const fs::path& dir, const TrainableBertConfig& c, const std::map<std::string, at::Tensor>& w,
                       bool half) {
  write_json(dir / "config.json", {{"architectures", {"BertModel"}},
                                   {"model_type", "bert"},
                                   {"vocab_size", c.vocab_size},
                                   {"hidden_size", c.hidden},
                                   {"num_hidden_layers", c.layers},
                                   {"num_attention_heads", c.heads},
                                   {"intermediate_size", c.ffn},
                                   {"hidden_act", "gelu"},
                                   {"hidden_dropout_prob", c.dropout},
                                   {"attention_probs_dropout_prob", c.dropout},
                                   {"max_position_embeddings", c.max_positions},
                                   {"type_vocab_size", 2},
                                   {"initializer_range", 0.02},
                                   {"layer_norm_eps", c.layer_norm_eps},
                                   {"pad_token_id", 0},
                                   {"position_embedding_type", "absolute"},
                                   {"torch_dtype", half ? "float16" : "float32"}});
  std::vector<SafetensorsTensor> tensors;
  for (const auto& [name, t] : w) {
    const at::Tensor x = t.detach().cpu().to(half ? at::kHalf : at::kFloat).contiguous();
    tensors.push_back({name, half ? TENSOR_DTYPE_F16 : TENSOR_DTYPE_F32, x.sizes().vec(),
                       std::string(static_cast<const char*>(x.data_ptr()), static_cast<size_t>(x.nbytes()))});
  }
  write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
  write_json(dir / "modules.json",
             ordered_json::array({{{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
                                  {{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}},
                                  {{"idx", 2}, {"name", "2"}, {"path", "2_Normalize"}, {"type", "sentence_transformers.models.Normalize"}}}));
  fs::create_directories(dir / "1_Pooling");
  fs::create_directories(dir / "2_Normalize");
  write_json(dir / "1_Pooling" / "config.json", {{"word_embedding_dimension", c.hidden},
                                                 {"pooling_mode_cls_token", false},
                                                 {"pooling_mode_mean_tokens", true},
                                                 {"pooling_mode_max_tokens", false},
                                                 {"pooling_mode_mean_sqrt_len_tokens", false},
                                                 {"pooling_mode_weightedmean_tokens", false},
                                                 {"pooling_mode_lasttoken", false},
                                                 {"include_prompt", true}});
  write_json(dir / "config_sentence_transformers.json",
             {{"__version__", {{"sentence_transformers", "3.0.1"}}},
              {"prompts", ordered_json::object()},
              {"default_prompt_name", nullptr},
              {"similarity_fn_name", "cosine"}});
}

}  // namespace embeval
