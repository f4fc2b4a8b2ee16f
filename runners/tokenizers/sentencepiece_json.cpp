#include "runners/tokenizers/sentencepiece_json.h"

#include <cstdint>
#include <cstring>

#include "datasets/jsonl_reader.h"
#include "harness/error.h"

namespace embeval {
namespace {

using json = nlohmann::json;

// Protobuf wire format, the few shapes ModelProto needs
// (sentencepiece_model.proto field numbers).
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void tag(std::string& out, int field, int wire) { varint(out, (static_cast<uint64_t>(field) << 3) | wire); }
void bytes_field(std::string& out, int field, const std::string& v) {
  tag(out, field, 2);
  varint(out, v.size());
  out += v;
}
void varint_field(std::string& out, int field, uint64_t v) {
  tag(out, field, 0);
  varint(out, v);
}
void float_field(std::string& out, int field, float v) {
  tag(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian on every platform embeval builds for
  out.append(b, 4);
}

enum PieceType { NORMAL = 1, UNKNOWN = 2, CONTROL = 3 };
enum ModelType { UNIGRAM = 1 };

std::string piece_message(const std::string& piece, float score, PieceType type) {
  std::string m;
  bytes_field(m, 1, piece);
  float_field(m, 2, score);
  if (type != NORMAL) varint_field(m, 3, type);
  return m;
}

// RFC 4648 base64 (the Precompiled normalizer's character map); padding optional.
std::string base64_decode(const std::string& in, const std::filesystem::path& file) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < in.size() && in[i] != '='; ++i) {
    const int v = value(in[i]);
    if (v < 0) fail("{}: precompiled_charsmap is not base64 (character {} at {})", file.string(), int(in[i]), i);
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  for (; i < in.size(); ++i)
    if (in[i] != '=') fail("{}: precompiled_charsmap is not base64 (data after padding)", file.string());
  return out;
}

bool is_whitespace_collapse(const json& n) {
  // Replace(Regex(" {2,}"), " ") (or "▁", by newer converters): SentencePiece's remove_extra_whitespaces.
  if (n.value("type", "") != "Replace" || !n.contains("pattern") || !n["pattern"].is_object()) return false;
  const json& p = n["pattern"];
  return p.contains("Regex") && p["Regex"] == " {2,}" && (n.value("content", "") == " " || n.value("content", "") == "\u2581");
}

}  // namespace

namespace {

std::string convert(const json& tj, const std::filesystem::path& file) {
  const std::string where = file.string();
  if (!tj.is_object() || !tj.contains("model") || !tj["model"].is_object())
    fail("{}: expected an object with a \"model\" object", where);
  const json& model = tj["model"];
  if (!model.contains("vocab") || !model["vocab"].is_array())
    fail("{}: model.vocab must be a list of [piece, score] pairs", where);
  const json& vocab = model["vocab"];
  auto piece_at = [&](size_t i) -> std::string {
    const json& e = vocab[i];
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
      fail("{}: model.vocab[{}] is not a [piece, score] pair", where, i);
    return e[0].get<std::string>();
  };
  const char* fairseq[] = {"<s>", "<pad>", "</s>", "<unk>"};
  bool layout = vocab.size() > 4 && model.value("unk_id", json()) == 3;
  for (size_t i = 0; layout && i < 4; ++i) layout = piece_at(i) == fairseq[i];
  if (!layout)
    fail("{}: a Unigram vocabulary embeval reads has XLM-R's layout (<s> <pad> </s> <unk> first, unk_id 3); "
         "ship sentencepiece.bpe.model instead",
         where);
  size_t end = vocab.size();
  if (piece_at(end - 1) == "<mask>") --end;  // the fairseq <mask>, added after the SentencePiece pieces
  if (model.value("byte_fallback", false)) fail("{}: byte_fallback Unigram models are not supported", where);

  // Normalizer: nothing, Precompiled, or a Sequence of Precompiled, the
  // whitespace collapse and a right Strip (texts are stripped before
  // tokenizing anyway).
  std::string charsmap;
  bool collapse = false;
  const json& norm = tj.value("normalizer", json());
  std::vector<json> steps;
  if (norm.is_object() && norm.value("type", "") == "Sequence" && norm.contains("normalizers") &&
      norm["normalizers"].is_array())
    steps.assign(norm["normalizers"].begin(), norm["normalizers"].end());
  else if (!norm.is_null())
    steps.push_back(norm);
  for (const json& n : steps) {
    const std::string type = n.is_object() ? n.value("type", "") : "";
    if (type == "Precompiled" && n.contains("precompiled_charsmap") && n["precompiled_charsmap"].is_string())
      charsmap = base64_decode(n["precompiled_charsmap"].get<std::string>(), file);
    else if (is_whitespace_collapse(n))
      collapse = true;
    else if (type == "Strip" && !n.value("left", false))
      continue;
    else
      fail("{}: unsupported normalizer {} for a Unigram model; expected Precompiled and Replace(\" {{2,}}\")", where,
           n.dump());
  }
  // Pre-tokenizer: Metaspace ("▁"), alone or after WhitespaceSplit.
  bool dummy_prefix = true;
  const json& pre = tj.value("pre_tokenizer", json());
  std::vector<json> pres;
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers"))
    pres.assign(pre["pretokenizers"].begin(), pre["pretokenizers"].end());
  else
    pres.push_back(pre);
  bool metaspace = false;
  for (const json& p : pres) {
    const std::string type = p.is_object() ? p.value("type", "") : "";
    if (type == "WhitespaceSplit") continue;
    if (type != "Metaspace" || p.value("replacement", "\u2581") != "\u2581")
      fail("{}: unsupported pre_tokenizer {} for a Unigram model; expected Metaspace(\"\u2581\")", where, p.dump());
    metaspace = true;
    const std::string scheme = p.value("prepend_scheme", "");
    dummy_prefix = scheme.empty() ? p.value("add_prefix_space", true) : scheme != "never";
  }
  if (!metaspace) fail("{}: a Unigram model needs a Metaspace pre_tokenizer", where);

  std::string proto;
  bytes_field(proto, 1, piece_message("<unk>", 0.f, UNKNOWN));
  bytes_field(proto, 1, piece_message("<s>", 0.f, CONTROL));
  bytes_field(proto, 1, piece_message("</s>", 0.f, CONTROL));
  for (size_t i = 4; i < end; ++i) {
    const std::string piece = piece_at(i);  // checks the pair before its score is read
    bytes_field(proto, 1, piece_message(piece, vocab[i][1].get<float>(), NORMAL));
  }
  std::string trainer;
  varint_field(trainer, 3, UNIGRAM);               // model_type
  varint_field(trainer, 4, end - 1);               // vocab_size: the pieces above
  bytes_field(proto, 2, trainer);
  std::string normalizer;
  bytes_field(normalizer, 1, charsmap.empty() ? "identity" : "nmt_nfkc");
  if (!charsmap.empty()) bytes_field(normalizer, 2, charsmap);
  varint_field(normalizer, 3, dummy_prefix);       // add_dummy_prefix
  varint_field(normalizer, 4, collapse);           // remove_extra_whitespaces
  varint_field(normalizer, 5, 1);                  // escape_whitespaces
  bytes_field(proto, 3, normalizer);
  return proto;
}

}  // namespace

std::string sentencepiece_model_from_tokenizer_json(const json& tj, const std::filesystem::path& file) {
  try {
    return convert(tj, file);
  } catch (const json::exception& e) {
    // A field of an unexpected JSON type somewhere in the file.
    fail("{}: {}", file.string(), data::json_error_text(e));
  }
}

}  // namespace embeval
