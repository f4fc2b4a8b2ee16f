#include "runners/bert/st_pipeline.h"

#include <fmt/format.h>

#include "harness/error.h"
#include "runners/checkpoint/json_config.h"

namespace embeval {
namespace fs = std::filesystem;
namespace {

const char* const ST_PREFIX = "sentence_transformers.models.";

DenseActivation parse_activation(const JsonConfig& j, const std::string& name) {
  // torch.nn.modules.linear.Identity, torch.nn.modules.activation.Tanh, ...
  std::string leaf = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
  if (leaf == "Identity") return DENSE_ACTIVATION_IDENTITY;
  if (leaf == "Tanh") return DENSE_ACTIVATION_TANH;
  if (leaf == "ReLU") return DENSE_ACTIVATION_RELU;
  if (leaf == "GELU") return DENSE_ACTIVATION_GELU;
  if (leaf == "Sigmoid") return DENSE_ACTIVATION_SIGMOID;
  j.fail_field("activation_function", fmt::format("is \"{}\"; expected Identity, Tanh, ReLU, GELU or Sigmoid", name));
}

PoolingConfig read_pooling(const fs::path& file) {
  JsonConfig j(file);
  PoolingConfig p;
  p.word_embedding_dimension = j.get_int("word_embedding_dimension", 0);
  // sentence-transformers' Pooling() defaults: mean on, the others off.
  if (j.get_bool("pooling_mode_cls_token", false)) p.modes.push_back(POOLING_CLS);
  if (j.get_bool("pooling_mode_max_tokens", false)) p.modes.push_back(POOLING_MAX);
  if (j.get_bool("pooling_mode_mean_tokens", true)) p.modes.push_back(POOLING_MEAN);
  if (j.get_bool("pooling_mode_mean_sqrt_len_tokens", false)) p.modes.push_back(POOLING_MEAN_SQRT_LEN);
  if (j.get_bool("pooling_mode_weightedmean_tokens", false)) p.modes.push_back(POOLING_WEIGHTED_MEAN);
  if (j.get_bool("pooling_mode_lasttoken", false)) p.modes.push_back(POOLING_LAST_TOKEN);
  p.include_prompt = j.get_bool("include_prompt", true);
  if (p.modes.empty()) fail("{}: no pooling mode is enabled; expected one of pooling_mode_* true", file.string());
  return p;
}

PostStep read_dense(const fs::path& dir) {
  JsonConfig j(dir / "config.json");
  PostStep s;
  s.kind = PostStep::POST_DENSE;
  s.dir = dir;
  s.in_features = j.get_int("in_features");
  s.out_features = j.get_int("out_features");
  if (s.in_features <= 0) j.fail_field("in_features", "must be positive");
  if (s.out_features <= 0) j.fail_field("out_features", "must be positive");
  s.bias = j.get_bool("bias", true);
  // sentence-transformers' Dense() default activation is Tanh.
  s.activation_name = j.get_string("activation_function", "torch.nn.modules.activation.Tanh");
  s.activation = parse_activation(j, s.activation_name);
  return s;
}

}  // namespace

const char* pooling_mode_name(PoolingMode m) {
  switch (m) {
    case POOLING_CLS: return "cls";
    case POOLING_MAX: return "max";
    case POOLING_MEAN: return "mean";
    case POOLING_MEAN_SQRT_LEN: return "mean_sqrt_len";
    case POOLING_WEIGHTED_MEAN: return "weighted_mean";
    case POOLING_LAST_TOKEN: return "last_token";
  }
  return "?";
}

bool StPipeline::normalizes() const {
  return !post.empty() && post.back().kind == PostStep::POST_NORMALIZE;
}

int64_t StPipeline::pooled_dim(int64_t hidden_size) const {
  return hidden_size * static_cast<int64_t>(pooling.modes.size());
}

StPipeline read_st_pipeline(const fs::path& dir) {
  StPipeline p;
  p.dir = dir;
  p.transformer_dir = dir;
  if (!fs::is_directory(dir)) fail("{}: not a checkpoint folder", dir.string());

  const fs::path modules = dir / "modules.json";
  bool have_pooling = false;
  if (fs::exists(modules)) {
    p.has_modules_json = true;
    JsonConfig j(modules, /*allow_array=*/true);
    if (!j.json().is_array()) fail("{}: expected a list of modules", modules.string());
    bool have_transformer = false;
    for (size_t i = 0; i < j.json().size(); ++i) {
      const auto& m = j.json()[i];
      auto field = [&](const char* key) -> std::string {
        if (!m.is_object() || !m.contains(key) || !m[key].is_string())
          fail("{}: module {} lacks string \"{}\"", modules.string(), i, key);
        return m[key].get<std::string>();
      };
      std::string type = field("type"), path = field("path");
      if (path.find("..") != std::string::npos) fail("{}: module {} path \"{}\" leaves the folder", modules.string(), i, path);
      std::string leaf = type.rfind(ST_PREFIX, 0) == 0 ? type.substr(std::string(ST_PREFIX).size()) : type;
      const fs::path mdir = path.empty() ? dir : dir / path;
      if (leaf == "Transformer" || leaf == "models.Transformer") {
        if (have_transformer || have_pooling) fail("{}: Transformer must be the first module, once", modules.string());
        have_transformer = true;
        p.transformer_dir = mdir;
      } else if (leaf == "Pooling") {
        if (!have_transformer || have_pooling) fail("{}: Pooling must follow the Transformer, once", modules.string());
        have_pooling = true;
        p.pooling = read_pooling(mdir / "config.json");
      } else if (leaf == "Dense") {
        if (!have_pooling) fail("{}: Dense before Pooling is not supported", modules.string());
        p.post.push_back(read_dense(mdir));
      } else if (leaf == "Normalize") {
        if (!have_pooling) fail("{}: Normalize before Pooling is not supported", modules.string());
        PostStep s;
        s.kind = PostStep::POST_NORMALIZE;
        p.post.push_back(s);
      } else {
        fail("{}: module {} has type \"{}\"; embeval runs Transformer, Pooling, Dense and Normalize", modules.string(),
             i, type);
      }
    }
    if (!have_transformer) fail("{}: no Transformer module", modules.string());
    if (!have_pooling) {
      // sentence-transformers would return token embeddings; an embedding model needs a sentence vector.
      fail("{}: no Pooling module; expected Transformer -> Pooling", modules.string());
    }
  } else {
    p.pooling.modes = {POOLING_MEAN};
    p.notes.push_back("no modules.json: Transformer + mean pooling, no normalisation (sentence-transformers' default)");
  }

  const fs::path sbert = p.transformer_dir / "sentence_bert_config.json";
  if (fs::exists(sbert)) {
    JsonConfig j(sbert);
    p.max_seq_length = j.get_int("max_seq_length", 0);
    if (j.has("max_seq_length") && p.max_seq_length <= 0) j.fail_field("max_seq_length", "must be positive");
    p.do_lower_case = j.get_bool("do_lower_case", false);
  }
  const fs::path tok = p.transformer_dir / "tokenizer_config.json";
  if (fs::exists(tok)) {
    JsonConfig j(tok);
    // transformers writes 1e30 for "no limit"; treat anything huge as absent.
    if (j.has("model_max_length") && j.json()["model_max_length"].is_number()) {
      double v = j.json()["model_max_length"].get<double>();
      if (v > 0 && v < 1e9) p.tokenizer_max_length = static_cast<int64_t>(v);
    }
  }

  const fs::path stcfg = dir / "config_sentence_transformers.json";
  if (fs::exists(stcfg)) {
    JsonConfig j(stcfg);
    if (j.has("prompts")) {
      const auto& pr = j.json()["prompts"];
      if (!pr.is_object()) j.fail_field("prompts", "must be an object of name -> prompt");
      for (auto it = pr.begin(); it != pr.end(); ++it) {
        if (!it.value().is_string()) fail("{}: prompts[\"{}\"] must be a string", stcfg.string(), it.key());
        p.prompts[it.key()] = it.value().get<std::string>();
      }
    }
    p.default_prompt_name = j.get_string("default_prompt_name", "");
    if (!p.default_prompt_name.empty() && !p.prompts.count(p.default_prompt_name))
      j.fail_field("default_prompt_name", fmt::format("\"{}\" is not in prompts", p.default_prompt_name));
    p.similarity_fn_name = j.get_string("similarity_fn_name", "");
    const std::string& s = p.similarity_fn_name;
    if (s.empty() || s == "cosine")
      p.similarity = SIMILARITY_COSINE;
    else if (s == "dot")
      p.similarity = SIMILARITY_DOT;
    else if (s == "euclidean")
      p.similarity = SIMILARITY_EUCLIDEAN;
    else if (s == "manhattan")
      p.similarity = SIMILARITY_MANHATTAN;
    else
      j.fail_field("similarity_fn_name", fmt::format("is \"{}\"; expected cosine, dot, euclidean or manhattan", s));
  }
  return p;
}

}  // namespace embeval
