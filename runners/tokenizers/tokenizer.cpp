// load_tokenizer(): which tokenizer a checkpoint folder holds and with which
// options, decided as transformers' AutoTokenizer + sentence-transformers do.
#include "runners/tokenizers/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "datasets/jsonl_reader.h"
#include "harness/error.h"
#include "runners/tokenizers/sentencepiece_json.h"
#include "runners/tokenizers/sentencepiece_tokenizer.h"
#include "runners/tokenizers/wordpiece_tokenizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace embeval {
namespace {

// Tokenizer classes whose vocab.txt is BERT's WordPiece with BasicTokenizer.
const char* const WORDPIECE_CLASSES[] = {"BertTokenizer", "BertTokenizerFast", "DistilBertTokenizer",
                                         "DistilBertTokenizerFast", "ElectraTokenizer", "ElectraTokenizerFast"};
const char* const SENTENCEPIECE_CLASSES[] = {"XLMRobertaTokenizer", "XLMRobertaTokenizerFast"};

json read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("{}: cannot read", file.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: malformed JSON ({}); expected the Hugging Face file", file.string(), data::json_error_text(e));
  }
}

// A token id from a JSON file: an integer a vocabulary can hold. get<int32_t>
// alone would wrap 2^32 + 5 to 5 and let -1 through to the embedding lookup.
int32_t token_id(const json& v, const fs::path& file, const std::string& what) {
  if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<uint64_t>() > INT32_MAX - 1
                                                         : v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX - 1))
    fail("{}: {} must be a token id (an integer from 0 to 2^31 - 2), got {}", file.string(), what, v.dump());
  return v.get<int32_t>();
}

json read_json_if_exists(const fs::path& file) { return fs::exists(file) ? read_json(file) : json::object(); }

// A field that must be a boolean when present (null counts as absent).
bool optional_bool(const json& j, const char* key, bool fallback, const fs::path& file) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) fail("{}: \"{}\" must be true or false", file.string(), key);
  return j[key].get<bool>();
}

// A special token, written as "[CLS]" or {"content": "[CLS]", ...}.
std::string token_text(const json& v, const char* key, const fs::path& file) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  fail("{}: \"{}\" must be a string or an object with \"content\"", file.string(), key);
}

struct TokenizerConfig {
  json config;          // tokenizer_config.json
  json special_tokens;  // special_tokens_map.json
  fs::path config_file, special_file;

  bool has(const char* key) const { return config.contains(key) && !config[key].is_null(); }
  // special_tokens_map.json wins over tokenizer_config.json, as in
  // PreTrainedTokenizerBase._from_pretrained.
  std::string special(const char* key, const std::string& fallback) const {
    if (special_tokens.contains(key) && !special_tokens[key].is_null())
      return token_text(special_tokens[key], key, special_file);
    if (has(key)) return token_text(config[key], key, config_file);
    return fallback;
  }
  std::vector<std::string> additional_special_tokens() const {
    std::vector<std::string> out;
    for (const json* j : {&special_tokens, &config}) {
      const fs::path& f = j == &config ? config_file : special_file;
      if (!j->contains("additional_special_tokens") || !(*j)["additional_special_tokens"].is_array()) continue;
      for (const json& v : (*j)["additional_special_tokens"]) out.push_back(token_text(v, "additional_special_tokens", f));
      break;
    }
    return out;
  }
  std::string tokenizer_class() const {
    return config.contains("tokenizer_class") && config["tokenizer_class"].is_string()
               ? config["tokenizer_class"].get<std::string>()
               : std::string();
  }
};

TokenizerConfig read_tokenizer_config(const fs::path& dir) {
  TokenizerConfig c;
  c.config_file = dir / "tokenizer_config.json";
  c.special_file = dir / "special_tokens_map.json";
  c.config = read_json_if_exists(c.config_file);
  c.special_tokens = read_json_if_exists(c.special_file);
  if (!c.config.is_object()) fail("{}: expected a JSON object", c.config_file.string());
  if (!c.special_tokens.is_object()) fail("{}: expected a JSON object", c.special_file.string());
  return c;
}

// sentence-transformers' Transformer module: strips every text, and
// lower-cases it with str.lower() when sentence_bert_config.json says so.
SentencePreprocess read_preprocess(const fs::path& dir) {
  fs::path file = dir / "sentence_bert_config.json";
  json j = read_json_if_exists(file);
  SentencePreprocess p;
  if (j.is_object()) p.lower = optional_bool(j, "do_lower_case", false, file);
  return p;
}

// added_tokens_decoder of tokenizer_config.json ({"id": {"content", "lstrip",
// ...}}) and the older added_tokens.json ({"token": id}).
std::vector<AddedToken> read_added_tokens(const fs::path& dir, const TokenizerConfig& cfg) {
  std::vector<AddedToken> out;
  if (cfg.config.contains("added_tokens_decoder") && cfg.config["added_tokens_decoder"].is_object()) {
    for (const auto& [key, v] : cfg.config["added_tokens_decoder"].items()) {
      AddedToken t;
      try {
        t.id = std::stoi(key);
      } catch (const std::exception&) {
        fail("{}: added_tokens_decoder key \"{}\" is not an id", cfg.config_file.string(), key);
      }
      t.content = token_text(v, "added_tokens_decoder", cfg.config_file);
      if (v.is_object()) {
        t.lstrip = optional_bool(v, "lstrip", false, cfg.config_file);
        t.rstrip = optional_bool(v, "rstrip", false, cfg.config_file);
        t.special = optional_bool(v, "special", false, cfg.config_file);
      }
      out.push_back(t);
    }
  }
  fs::path added_file = dir / "added_tokens.json";
  if (fs::exists(added_file)) {
    json j = read_json(added_file);
    if (!j.is_object()) fail("{}: expected {{\"token\": id, ...}}", added_file.string());
    for (const auto& item : j.items()) {
      const std::string& token = item.key();  // not a structured binding: C++17 lambdas cannot capture one
      const json& id = item.value();
      const int32_t id_value = token_id(id, added_file, "the id of \"" + token + "\"");
      bool known = std::any_of(out.begin(), out.end(), [&](const AddedToken& t) { return t.content == token; });
      if (!known) out.push_back({token, id_value, false, false, false});
    }
  }
  return out;
}

void add_unique(std::vector<AddedToken>& tokens, AddedToken t) {
  for (AddedToken& u : tokens) {
    if (u.content == t.content) {
      u.special = u.special || t.special;
      return;
    }
  }
  tokens.push_back(std::move(t));
}

// tokenizer.json's "added_tokens": [{"id", "content", "lstrip", "rstrip", "special"}].
std::vector<AddedToken> tokenizer_json_added_tokens(const json& tj, const fs::path& file) {
  std::vector<AddedToken> out;
  if (!tj.contains("added_tokens") || !tj["added_tokens"].is_array()) return out;
  for (const json& a : tj["added_tokens"]) {
    if (!a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") || !a["content"].is_string())
      fail("{}: added_tokens entries need an integer id and a string content", file.string());
    add_unique(out, {a["content"].get<std::string>(), token_id(a["id"], file, "an added_tokens id"),
                     optional_bool(a, "lstrip", false, file),
                     optional_bool(a, "rstrip", false, file), optional_bool(a, "special", false, file)});
  }
  return out;
}

bool is_one_of(const std::string& name, const char* const* begin, const char* const* end) {
  return std::find(begin, end, name) != end;
}

int32_t vocab_id(const std::unordered_map<std::string, int32_t>& vocab, const std::string& token, const char* role,
                 const fs::path& file) {
  auto it = vocab.find(token);
  if (it == vocab.end()) fail("{}: no \"{}\" token ({}) in the vocabulary", file.string(), token, role);
  return it->second;
}

// The special tokens of a WordPiece vocabulary and [CLS] ... [SEP] around
// the text; the specials join the added tokens so literal ones map to ids.
void set_bert_specials(WordPieceOptions& o, const std::unordered_map<std::string, int32_t>& vocab,
                       const TokenizerConfig& cfg, const fs::path& vocab_file) {
  o.unk_token = cfg.special("unk_token", "[UNK]");
  std::string cls = cfg.special("cls_token", "[CLS]"), sep = cfg.special("sep_token", "[SEP]");
  std::string pad = cfg.special("pad_token", "[PAD]"), mask = cfg.special("mask_token", "[MASK]");
  int32_t unk_id = vocab_id(vocab, o.unk_token, "unk_token", vocab_file);
  int32_t cls_id = vocab_id(vocab, cls, "cls_token", vocab_file);
  int32_t sep_id = vocab_id(vocab, sep, "sep_token", vocab_file);
  o.pad_id = vocab_id(vocab, pad, "pad_token", vocab_file);
  if (o.prefix_ids.empty() && o.suffix_ids.empty()) {
    o.prefix_ids = {cls_id};
    o.suffix_ids = {sep_id};
  }
  add_unique(o.added_tokens, {o.unk_token, unk_id, false, false, true});
  add_unique(o.added_tokens, {sep, sep_id, false, false, true});
  add_unique(o.added_tokens, {pad, o.pad_id, false, false, true});
  add_unique(o.added_tokens, {cls, cls_id, false, false, true});
  auto m = vocab.find(mask);
  if (m != vocab.end()) add_unique(o.added_tokens, {mask, m->second, false, false, true});
  for (const std::string& t : cfg.additional_special_tokens()) {
    auto it = vocab.find(t);
    if (it != vocab.end()) add_unique(o.added_tokens, {t, it->second, false, false, true});
  }
}

// BertTokenizer's options from tokenizer_config.json, with its defaults
// (do_lower_case=True, strip_accents=None -> do_lower_case,
// tokenize_chinese_chars=True). BertTokenizerFast takes the same three from
// tokenizer_config.json and rebuilds tokenizer.json's normalizer with them
// when they differ, so they win there too.
void set_bert_case_options(WordPieceOptions& o, const TokenizerConfig& cfg) {
  o.lower_case = optional_bool(cfg.config, "do_lower_case", true, cfg.config_file);
  o.strip_accents = optional_bool(cfg.config, "strip_accents", o.lower_case, cfg.config_file);
  o.tokenize_chinese_chars = optional_bool(cfg.config, "tokenize_chinese_chars", true, cfg.config_file);
}

std::unique_ptr<Tokenizer> load_vocab_txt(const fs::path& dir, const TokenizerConfig& cfg, TokenizerFlavor flavor) {
  fs::path vocab_file = dir / "vocab.txt";
  std::string cls = cfg.tokenizer_class();
  if (!cls.empty() && !is_one_of(cls, std::begin(WORDPIECE_CLASSES), std::end(WORDPIECE_CLASSES)))
    fail("{}: unknown tokenizer type \"{}\" for vocab.txt; known: {}", cfg.config_file.string(), cls,
         fmt::join(std::begin(WORDPIECE_CLASSES), std::end(WORDPIECE_CLASSES), ", "));
  if (!optional_bool(cfg.config, "do_basic_tokenize", true, cfg.config_file))
    fail("{}: do_basic_tokenize=false is not supported; expected true", cfg.config_file.string());
  int64_t lines = 0;
  auto vocab = WordPieceTokenizer::read_vocab_txt(vocab_file.string(), &lines);
  WordPieceOptions o;
  o.source = "vocab.txt";
  o.slow = flavor != TOKENIZER_FAST;
  set_bert_case_options(o, cfg);
  if (cfg.config.contains("never_split") && cfg.config["never_split"].is_array())
    for (const json& v : cfg.config["never_split"]) o.never_split.push_back(token_text(v, "never_split", cfg.config_file));
  o.added_tokens = read_added_tokens(dir, cfg);
  set_bert_specials(o, vocab, cfg, vocab_file);
  o.preprocess = read_preprocess(dir);
  return std::make_unique<WordPieceTokenizer>(std::move(vocab), lines, std::move(o));
}

// [CLS] / [SEP] ids of a post_processor: TemplateProcessing (the single
// template's specials before and after $A), BertProcessing or
// RobertaProcessing, or the first of those inside a Sequence.
bool read_post_processor(const json& pp, WordPieceOptions& o, const fs::path& file) {
  if (!pp.is_object() || !pp.contains("type")) return false;
  std::string type = pp["type"].is_string() ? pp["type"].get<std::string>() : "";
  if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
    for (const json& p : pp["processors"])
      if (read_post_processor(p, o, file)) return true;
    return false;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto id_of = [&](const char* key) {
      if (!pp.contains(key) || !pp[key].is_array() || pp[key].size() != 2 || !pp[key][1].is_number_integer())
        fail("{}: post_processor.{} must be [token, id]", file.string(), key);
      return token_id(pp[key][1], file, std::string("post_processor.") + key + "'s id");
    };
    o.prefix_ids = {id_of("cls")};
    o.suffix_ids = {id_of("sep")};
    return true;
  }
  if (type == "TemplateProcessing") {
    if (!pp.contains("single") || !pp["single"].is_array())
      fail("{}: post_processor.single must be a list", file.string());
    bool after = false;
    for (const json& item : pp["single"]) {
      if (item.contains("Sequence")) {
        after = true;
        continue;
      }
      if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id"))
        fail("{}: post_processor.single: expected SpecialToken or Sequence items", file.string());
      if (!item["SpecialToken"]["id"].is_string())
        fail("{}: post_processor.single: a SpecialToken id must be a string", file.string());
      std::string name = item["SpecialToken"]["id"].get<std::string>();
      const json& st = pp.value("special_tokens", json::object());
      if (!st.contains(name) || !st[name].contains("ids") || !st[name]["ids"].is_array())
        fail("{}: post_processor.special_tokens has no ids for \"{}\"", file.string(), name);
      for (const json& id : st[name]["ids"])
        (after ? o.suffix_ids : o.prefix_ids).push_back(token_id(id, file, "a post_processor.special_tokens id"));
    }
    return true;
  }
  return false;
}

std::unique_ptr<Tokenizer> load_tokenizer_json_wordpiece(const fs::path& dir, const json& tj,
                                                         const TokenizerConfig& cfg, TokenizerFlavor flavor) {
  const fs::path file = dir / "tokenizer.json";
  const json& model = tj["model"];
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail("{}: model.vocab must be an object {{token: id}}", file.string());
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(model["vocab"].size());
  for (const auto& [token, id] : model["vocab"].items()) {
    vocab[token] = token_id(id, file, "model.vocab: the id of \"" + token + "\"");
  }
  WordPieceOptions o;
  o.source = "tokenizer.json";
  o.slow = flavor == TOKENIZER_SLOW;
  if (model.contains("unk_token") && model["unk_token"].is_string()) o.unk_token = model["unk_token"].get<std::string>();
  if (model.contains("continuing_subword_prefix") && model["continuing_subword_prefix"].is_string())
    o.continuing_subword_prefix = model["continuing_subword_prefix"].get<std::string>();
  if (model.contains("max_input_chars_per_word") && model["max_input_chars_per_word"].is_number_integer())
    o.max_input_chars_per_word = model["max_input_chars_per_word"].get<int64_t>();

  const json& norm = tj.value("normalizer", json());
  if (!norm.is_object() || norm.value("type", "") != "BertNormalizer")
    fail("{}: unsupported normalizer {} for WordPiece; expected BertNormalizer", file.string(),
         norm.is_object() ? norm.value("type", "?") : norm.dump());
  const json& pre = tj.value("pre_tokenizer", json());
  if (!pre.is_object() || pre.value("type", "") != "BertPreTokenizer")
    fail("{}: unsupported pre_tokenizer {} for WordPiece; expected BertPreTokenizer", file.string(),
         pre.is_object() ? pre.value("type", "?") : pre.dump());
  o.clean_text = optional_bool(norm, "clean_text", true, file);
  std::string cls = cfg.tokenizer_class();
  if (cls.empty() || is_one_of(cls, std::begin(WORDPIECE_CLASSES), std::end(WORDPIECE_CLASSES))) {
    set_bert_case_options(o, cfg);
  } else {
    o.lower_case = optional_bool(norm, "lowercase", true, file);
    o.strip_accents = optional_bool(norm, "strip_accents", o.lower_case, file);
    o.tokenize_chinese_chars = optional_bool(norm, "handle_chinese_chars", true, file);
  }
  for (const AddedToken& a : tokenizer_json_added_tokens(tj, file)) add_unique(o.added_tokens, a);
  for (const AddedToken& a : read_added_tokens(dir, cfg)) add_unique(o.added_tokens, a);
  read_post_processor(tj.value("post_processor", json()), o, file);
  set_bert_specials(o, vocab, cfg, file);
  o.preprocess = read_preprocess(dir);
  int64_t size = static_cast<int64_t>(vocab.size());
  return std::make_unique<WordPieceTokenizer>(std::move(vocab), size, std::move(o));
}

// From sentencepiece.bpe.model, or (tokenizer_json given) from the
// Unigram model of tokenizer.json, with its added tokens.
std::unique_ptr<Tokenizer> load_sentencepiece(const fs::path& dir, const TokenizerConfig& cfg,
                                              const json* tokenizer_json = nullptr) {
  std::string cls = cfg.tokenizer_class();
  if (!cls.empty() && !is_one_of(cls, std::begin(SENTENCEPIECE_CLASSES), std::end(SENTENCEPIECE_CLASSES)))
    fail("{}: unknown tokenizer type \"{}\" for sentencepiece.bpe.model; known: {}", cfg.config_file.string(), cls,
         fmt::join(std::begin(SENTENCEPIECE_CLASSES), std::end(SENTENCEPIECE_CLASSES), ", "));
  SentencePieceOptions o;
  o.preprocess = read_preprocess(dir);
  o.added_tokens = read_added_tokens(dir, cfg);
  if (!tokenizer_json) return std::make_unique<SentencePieceTokenizer>(dir / "sentencepiece.bpe.model", std::move(o));
  const fs::path file = dir / "tokenizer.json";
  for (const AddedToken& a : tokenizer_json_added_tokens(*tokenizer_json, file)) add_unique(o.added_tokens, a);
  return std::make_unique<SentencePieceTokenizer>(file, sentencepiece_model_from_tokenizer_json(*tokenizer_json, file),
                                                  std::move(o));
}

std::string tokenizer_json_model_type(const json& tj, const fs::path& file) {
  if (!tj.is_object() || !tj.contains("model") || !tj["model"].is_object() || !tj["model"].contains("type") ||
      !tj["model"]["type"].is_string())
    fail("{}: no model.type; expected a Hugging Face tokenizers file", file.string());
  return tj["model"]["type"].get<std::string>();
}

// A JSON number as a length; values beyond int64 (transformers writes
// int(1e30) for "no limit") and absent values give `fallback`.
int64_t length_field(const json& j, const char* key, int64_t fallback, const fs::path& file) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) fail("{}: \"{}\" must be a number", file.string(), key);
  double v = j[key].get<double>();
  if (v >= 9.2e18) return fallback;
  if (v < 1 || v != std::floor(v)) fail("{}: \"{}\" must be a positive integer", file.string(), key);
  return static_cast<int64_t>(v);
}

std::unique_ptr<Tokenizer> load_tokenizer_files(const fs::path& model_dir, TokenizerFlavor flavor) {
  TokenizerConfig cfg = read_tokenizer_config(model_dir);
  const fs::path tokenizer_json = model_dir / "tokenizer.json", vocab_txt = model_dir / "vocab.txt",
                 spm = model_dir / "sentencepiece.bpe.model";
  if (fs::exists(tokenizer_json)) {
    json tj = read_json(tokenizer_json);
    std::string type = tokenizer_json_model_type(tj, tokenizer_json);
    if (type == "WordPiece") return load_tokenizer_json_wordpiece(model_dir, tj, cfg, flavor);
    // XLM-R's tokenizer.json holds a Unigram model converted from
    // sentencepiece.bpe.model: the original is run when it is there, else
    // the model rebuilt from tokenizer.json.
    if (type == "Unigram") return load_sentencepiece(model_dir, cfg, fs::exists(spm) ? nullptr : &tj);
    fail("{}: unsupported tokenizer model type \"{}\"; supported: WordPiece, Unigram (XLM-R)",
         tokenizer_json.string(), type);
  }
  if (fs::exists(vocab_txt)) return load_vocab_txt(model_dir, cfg, flavor);
  if (fs::exists(spm)) return load_sentencepiece(model_dir, cfg);
  fail("{}: no tokenizer found; expected tokenizer.json, vocab.txt or sentencepiece.bpe.model", model_dir.string());
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& model_dir, TokenizerFlavor flavor) {
  if (!fs::is_directory(model_dir)) fail("{}: model folder not found", model_dir.string());
  try {
    return load_tokenizer_files(model_dir, flavor);
  } catch (const json::exception& e) {
    // A field of an unexpected JSON type that no check above names.
    fail("{}: tokenizer files: {}; expected the Hugging Face files", model_dir.string(), data::json_error_text(e));
  }
}

int64_t default_max_length(const fs::path& model_dir) {
  // sentence-transformers' Transformer: max_seq_length from
  // sentence_bert_config.json, else min(config.max_position_embeddings,
  // tokenizer.model_max_length).
  const fs::path sbert = model_dir / "sentence_bert_config.json";
  json sj = read_json_if_exists(sbert);
  int64_t from_sbert = length_field(sj, "max_seq_length", 0, sbert);
  if (from_sbert > 0) return from_sbert;
  const fs::path config = model_dir / "config.json", tconfig = model_dir / "tokenizer_config.json";
  constexpr int64_t UNSET = INT64_MAX;
  int64_t positions = UNSET;
  // BertConfig and XLMRobertaConfig default to 512 positions.
  if (fs::exists(config)) positions = length_field(read_json(config), "max_position_embeddings", 512, config);
  int64_t model_max = length_field(read_json_if_exists(tconfig), "model_max_length", UNSET, tconfig);
  int64_t n = std::min(positions, model_max);
  if (n == UNSET)
    fail("{}: cannot tell the maximum sequence length (no sentence_bert_config.json max_seq_length, config.json "
         "max_position_embeddings or tokenizer_config.json model_max_length); expected one of them",
         model_dir.string());
  return n;
}

}  // namespace embeval
