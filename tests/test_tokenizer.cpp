// Tokenizers against Hugging Face: tests/data/tokenizer/ holds BertTokenizer's
// own ids for 1,480 texts on the bert-base-chinese vocabulary (cased and
// uncased; README.md there), and hand-checked edge cases as data
// (bert_edge_cases.jsonl: expected WordPiece tokens, cased and uncased). Each
// is run through vocab.txt (BertTokenizer rules) and through an equivalent
// tokenizer.json (BertTokenizerFast rules). Failures print file:line with
// expected and actual ids.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "datasets/text_util.h"
#include "harness/error.h"
#include "runners/tokenizers/sentencepiece_json.h"
#include "runners/tokenizers/sentencepiece_tokenizer.h"
#include "runners/tokenizers/tokenizer.h"
#include "runners/tokenizers/unicode_text.h"
#include "runners/tokenizers/wordpiece_tokenizer.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace embeval;

namespace {

const int32_t PAD = 0, UNK = 100, CLS = 101, SEP = 102, MASK = 103;

fs::path vocab_file() { return test::data_path("tokenizer/bert-base-chinese-vocab.txt"); }

// The vocabulary read independently of the code under test: lines split on
// '\n' (the file has no '\r'), so a U+2028 stays inside its line.
const std::unordered_map<std::string, int32_t>& plain_vocab() {
  static std::unordered_map<std::string, int32_t> vocab = [] {
    std::unordered_map<std::string, int32_t> v;
    std::ifstream in(vocab_file(), std::ios::binary);
    std::string line;
    for (int32_t id = 0; std::getline(in, line, '\n'); ++id) v[line] = id;
    return v;
  }();
  return vocab;
}

std::vector<int32_t> ids_of(const std::vector<std::string>& tokens) {
  std::vector<int32_t> ids{CLS};
  for (const std::string& t : tokens) {
    auto it = plain_vocab().find(t);
    EXPECT_NE(it, plain_vocab().end()) << "token not in the vocabulary: " << t;
    ids.push_back(it == plain_vocab().end() ? -1 : it->second);
  }
  ids.push_back(SEP);
  return ids;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

void copy_writable(const fs::path& from, const fs::path& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
}

// A checkpoint folder with the bert-base-chinese vocabulary as vocab.txt
// (BertTokenizer) or as tokenizer.json (BertTokenizerFast).
fs::path bert_dir(const std::string& name, bool lower, bool as_tokenizer_json, const json& extra_config = {}) {
  fs::path dir = test::scratch_dir("tokenizer/" + name);
  json config = {{"tokenizer_class", "BertTokenizer"}, {"do_lower_case", lower}, {"model_max_length", 512}};
  for (const auto& [k, v] : extra_config.items()) config[k] = v;
  test::write_file(dir / "tokenizer_config.json", config.dump());
  if (!as_tokenizer_json) {
    copy_writable(vocab_file(), dir / "vocab.txt");
    return dir;
  }
  json vocab = json::object();
  for (const auto& [token, id] : plain_vocab()) vocab[token] = id;
  json added = json::array();
  for (auto [token, id] : {std::pair{"[PAD]", PAD}, {"[UNK]", UNK}, {"[CLS]", CLS}, {"[SEP]", SEP}, {"[MASK]", MASK}})
    added.push_back({{"id", id}, {"content", token}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  json tj = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true}, {"strip_accents", nullptr},
        {"lowercase", lower}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}}})},
        {"special_tokens",
         {{"[CLS]", {{"id", "[CLS]"}, {"ids", {CLS}}, {"tokens", {"[CLS]"}}}},
          {"[SEP]", {{"id", "[SEP]"}, {"ids", {SEP}}, {"tokens", {"[SEP]"}}}}}}}},
      {"model",
       {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
        {"max_input_chars_per_word", 100}, {"vocab", vocab}}}};
  test::write_file(dir / "tokenizer.json", tj.dump());
  return dir;
}

struct Reference {
  std::string text;
  std::vector<int32_t> ids;
  int64_t line;
};

// The reference files hold {"text", "input_ids"}; the 200 random strings were
// written in pairs, "text": ["fuzz", s] with "input_ids": [ids, ids].
std::vector<Reference> read_reference(const fs::path& file) {
  std::vector<Reference> out;
  std::ifstream in(file, std::ios::binary);
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    json row = json::parse(line);
    if (row["text"].is_string()) {
      out.push_back({row["text"].get<std::string>(), row["input_ids"].get<std::vector<int32_t>>(), n});
    } else {
      for (size_t k = 0; k < row["text"].size(); ++k)
        out.push_back({row["text"][k].get<std::string>(), row["input_ids"][k].get<std::vector<int32_t>>(), n});
    }
  }
  return out;
}

// Unassigned as the reference saw it: in Python 3.11's Unicode 14.0.
bool has_unassigned(const std::string& text) {
  for (char32_t c : unicode::decode_utf8(text))
    if (utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_CN || unicode::unassigned_in_python(c))
      return true;
  return false;
}

// The reference is BertTokenizer's. Following BertTokenizerFast's rules
// (flavor fast, the default for tokenizer.json), a text may differ only
// where those rules differ: here, only texts holding an unassigned code
// point, which the fast tokenizer keeps as [UNK] (wordpiece_tokenizer.h).
void check_reference(const std::string& name, bool lower, bool as_tokenizer_json,
                     TokenizerFlavor flavor = TOKENIZER_AUTO) {
  fs::path file = test::data_path("tokenizer/bert-base-chinese-" + name + ".jsonl");
  const bool fast = flavor == TOKENIZER_FAST || (flavor == TOKENIZER_AUTO && as_tokenizer_json);
  auto tok = load_tokenizer(
      bert_dir(name + (as_tokenizer_json ? "-json" : "-txt") + std::to_string(flavor), lower, as_tokenizer_json),
      flavor);
  std::vector<Reference> refs = read_reference(file);
  ASSERT_EQ(refs.size(), 1480u);
  size_t matched = 0, long_texts = 0, explained = 0;
  for (const Reference& r : refs) {
    std::vector<int32_t> got = tok->encode(r.text, 512);
    long_texts += r.ids.size() == 512;
    if (got == r.ids)
      ++matched;
    else if (fast && has_unassigned(r.text))
      ++explained;
    else
      ADD_FAILURE() << file.string() << ":" << r.line << ": " << data::utf8_preview(r.text) << "\n  expected " << show(r.ids)
                    << "\n  actual   " << show(got);
  }
  std::printf("%s via %s (%s rules): %zu / %zu identical to BertTokenizer (%zu truncated at 512)%s\n",
              file.filename().c_str(), as_tokenizer_json ? "tokenizer.json" : "vocab.txt", fast ? "fast" : "slow",
              matched, refs.size(), long_texts,
              fast ? fmt::format("; {} differ by holding unassigned code points", explained).c_str() : "");
  EXPECT_GT(long_texts, 10u);  // the truncation path is exercised
  if (fast) {
    EXPECT_GT(explained, 0u);    // the difference is real, and only there
    EXPECT_LT(explained, 40u);
  }
}

}  // namespace

// --- Reference ids from transformers' BertTokenizer (exact) ------------------

TEST(WordPieceReference, UncasedVocabTxt) { check_reference("uncased", true, false); }
TEST(WordPieceReference, CasedVocabTxt) { check_reference("cased", false, false); }
TEST(WordPieceReference, UncasedTokenizerJson) { check_reference("uncased", true, true); }
TEST(WordPieceReference, CasedTokenizerJson) { check_reference("cased", false, true); }
TEST(WordPieceReference, TokenizerJsonWithSlowRules) {
  check_reference("uncased", true, true, TOKENIZER_SLOW);
  check_reference("cased", false, true, TOKENIZER_SLOW);
}
TEST(WordPieceReference, VocabTxtWithFastRules) {
  check_reference("uncased", true, false, TOKENIZER_FAST);
  check_reference("cased", false, false, TOKENIZER_FAST);
}

// --- Hand-checked edge cases (tests as data) ---------------------------------

TEST(WordPieceEdgeCases, FromDataFile) {
  fs::path file = test::data_path("tokenizer/bert_edge_cases.jsonl");
  std::unique_ptr<Tokenizer> toks[2][2];
  for (int lower = 0; lower < 2; ++lower)
    for (int js = 0; js < 2; ++js)
      toks[lower][js] = load_tokenizer(bert_dir(std::string("edge") + (lower ? "-u" : "-c") + (js ? "-json" : "-txt"),
                                                lower, js));
  std::ifstream in(file, std::ios::binary);
  std::string line;
  int64_t n = 0, checked = 0;
  while (std::getline(in, line)) {
    ++n;
    json row = json::parse(line);
    std::string text = row["text"];
    for (int lower = 0; lower < 2; ++lower) {
      for (int js = 0; js < 2; ++js) {
        // "fast": where BertTokenizerFast (tokenizer.json) differs.
        const json& expected = js && row.contains("fast") ? row["fast"] : row;
        std::vector<int32_t> want = ids_of(expected[lower ? "uncased" : "cased"].get<std::vector<std::string>>());
        std::vector<int32_t> got = toks[lower][js]->encode(text, 512);
        EXPECT_EQ(got, want) << file.string() << ":" << n << ": " << row["note"].get<std::string>() << " ("
                             << (lower ? "uncased" : "cased") << ", " << (js ? "tokenizer.json" : "vocab.txt")
                             << ")\n  expected " << show(want) << "\n  actual   " << show(got);
        ++checked;
      }
    }
  }
  EXPECT_EQ(n, 29);
  EXPECT_EQ(checked, 4 * n);
}

// Where BertTokenizer and BertTokenizerFast really differ, each side is
// reproduced by its own file type.
TEST(WordPieceEdgeCases, SlowAndFastDifferences) {
  auto slow = load_tokenizer(bert_dir("diff-txt", false, false));
  auto fast = load_tokenizer(bert_dir("diff-json", false, true));
  // U+F900 is a CJK compatibility ideograph: the slow tokenizer's NFC maps it
  // to U+8C48, which is in the vocabulary; the fast one keeps it: [UNK].
  EXPECT_EQ(slow->encode("\uf900", 512), ids_of({"豈"}));
  EXPECT_EQ(fast->encode("\uf900", 512), ids_of({"[UNK]"}));
  // A [SEP] that only appears once the NUL is cleaned away: BasicTokenizer
  // keeps it whole (never_split), the fast pre-tokenizer splits "[" "SEP" "]".
  EXPECT_EQ(slow->encode(std::string("[SE\0P]", 6), 512), ids_of({"[SEP]"}));
  EXPECT_EQ(fast->encode(std::string("[SE\0P]", 6), 512), ids_of({"[", "[UNK]", "]"}));
  // tokenizers' Chinese ranges start extension E at U+2B920: U+2B820 and
  // U+2B821 stay one word there (one [UNK]), two words for transformers.
  EXPECT_EQ(slow->encode("\U0002B820\U0002B821", 512), ids_of({"[UNK]", "[UNK]"}));
  EXPECT_EQ(fast->encode("\U0002B820\U0002B821", 512), ids_of({"[UNK]"}));
  EXPECT_EQ(fast->encode("\U0002B920\U0002B921", 512), ids_of({"[UNK]", "[UNK]"}));
  // An unassigned code point: transformers drops it (category Cn counts as
  // control); tokenizers keeps it, and the word becomes [UNK].
  EXPECT_EQ(slow->encode("ab\u0378c", 512), ids_of({"abc"}));
  EXPECT_EQ(fast->encode("ab\u0378c", 512), ids_of({"[UNK]"}));
  // Uncased, both fold U+F900 through NFD.
  auto fast_lower = load_tokenizer(bert_dir("diff-json-u", true, true));
  EXPECT_EQ(fast_lower->encode("\uf900", 512), ids_of({"豈"}));
}

TEST(WordPieceEdgeCases, TruncationFarBeyond512) {
  auto tok = load_tokenizer(bert_dir("long", true, false));
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "中";
  std::vector<int32_t> ids = tok->encode(text, 512);
  ASSERT_EQ(ids.size(), 512u);
  EXPECT_EQ(ids.front(), CLS);
  EXPECT_EQ(ids.back(), SEP);
  EXPECT_TRUE(std::all_of(ids.begin() + 1, ids.end() - 1, [](int32_t id) { return id == 704; }));  // 中
  EXPECT_EQ(tok->encode(text, 2), (std::vector<int32_t>{CLS, SEP}));
  EXPECT_EQ(tok->encode("中国", 3), (std::vector<int32_t>{CLS, 704, SEP}));
  EXPECT_EQ(tok->encode_plain(text).size(), 3000u);
  // A long document in words: 4000 words of "hello" -> 4000 pieces.
  std::string words;
  for (int i = 0; i < 4000; ++i) words += "hello ";
  EXPECT_EQ(tok->encode_plain(words).size(), 4000u);
  EXPECT_EQ(tok->encode(words, 128).size(), 128u);
  EXPECT_NE(test::error_of<UserError>([&] { tok->encode("x", 1); }).find("max length 1 is too small"), std::string::npos);
}

TEST(WordPieceEdgeCases, InvalidUtf8BecomesReplacementAndIsDropped) {
  auto tok = load_tokenizer(bert_dir("utf8", true, false));
  // "a", a stray continuation byte, "b": U+FFFD is removed by the cleaning.
  EXPECT_EQ(tok->encode("a\x80" "b", 512), ids_of({"ab"}));
}

TEST(WordPieceEdgeCases, SentenceTransformersStripAndLowerCase) {
  // sentence-transformers lower-cases the whole text with str.lower() when
  // sentence_bert_config.json says so: Final_Sigma applies, unlike the
  // tokenizer's own per-character lower-casing ("ΟΔΟΣ" -> ... ##σ above).
  fs::path dir = bert_dir("st-lower", true, false);
  test::write_file(dir / "sentence_bert_config.json", R"({"max_seq_length": 256, "do_lower_case": true})");
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->encode("ΟΔΟΣ", 512), ids_of({"ο", "##δ", "##ο", "##ς"}));
  // ... and a literal special token no longer survives it.
  EXPECT_EQ(tok->encode("[MASK]", 512), ids_of({"[", "ma", "##sk", "]"}));
  EXPECT_NE(tok->describe().find("st_lower_case"), std::string::npos);
  EXPECT_EQ(default_max_length(dir), 256);
}

TEST(WordPieceEdgeCases, NeverSplitAndAdditionalSpecialTokens) {
  // never_split words skip lower-casing and punctuation splitting and are
  // looked up whole; additional special tokens are cut out of the text.
  json extra = {{"never_split", {"a.b"}}, {"additional_special_tokens", {"[unused1]"}}};
  auto tok = load_tokenizer(bert_dir("never-split", false, false, extra));
  EXPECT_EQ(tok->encode("a.b x[unused1]y", 512), ids_of({"[UNK]", "x", "[unused1]", "y"}));
  EXPECT_EQ(tok->encode("a.bc", 512), ids_of({"a", ".", "bc"}));
}

TEST(WordPieceEdgeCases, StripAccentsFollowsConfig) {
  // strip_accents=false with do_lower_case: "CAFÉ" -> "café", not in the vocabulary.
  auto keep = load_tokenizer(bert_dir("keep-accents", true, false, {{"strip_accents", false}}));
  EXPECT_EQ(keep->encode("CAFÉ", 512), ids_of({"[UNK]"}));
  // strip_accents=true without lower-casing: "café" -> "cafe".
  auto strip = load_tokenizer(bert_dir("strip-cased", false, false, {{"strip_accents", true}}));
  EXPECT_EQ(strip->encode("café", 512), ids_of({"cafe"}));
  auto cased = load_tokenizer(bert_dir("cased-accents", false, false));
  EXPECT_EQ(cased->encode("café", 512), ids_of({"[UNK]"}));
  // tokenize_chinese_chars=false keeps a run of ideographs as one word.
  auto no_cjk = load_tokenizer(bert_dir("no-cjk", true, false, {{"tokenize_chinese_chars", false}}));
  EXPECT_EQ(no_cjk->encode("中国", 512), ids_of({"中", "##国"}));
}

// --- vocab.txt and loading ----------------------------------------------------

TEST(WordPieceVocab, LinesSplitOnNewlineOnly) {
  int64_t lines = 0;
  auto vocab = WordPieceTokenizer::read_vocab_txt(vocab_file().string(), &lines);
  EXPECT_EQ(lines, 21128);
  EXPECT_EQ(vocab.size(), 21128u);
  EXPECT_EQ(vocab.at("\u2028"), 343);  // line 344 of the file
  EXPECT_EQ(vocab.at("##\u2028"), 13502);
  EXPECT_EQ(vocab.at("[CLS]"), CLS);
  // CRLF and CR end lines too (Python's universal newlines); a repeated token
  // keeps its last line.
  fs::path f = test::scratch_dir("tokenizer/crlf") / "vocab.txt";
  test::write_file(f, "[PAD]\r\n[UNK]\ra\nb\r\na\n");
  auto small = WordPieceTokenizer::read_vocab_txt(f.string(), &lines);
  EXPECT_EQ(lines, 5);
  EXPECT_EQ(small.at("[UNK]"), 1);
  EXPECT_EQ(small.at("b"), 3);
  EXPECT_EQ(small.at("a"), 4);
}

TEST(WordPieceVocab, DescribeAndSizes) {
  auto tok = load_tokenizer(bert_dir("describe", true, false));
  EXPECT_EQ(tok->describe(), "wordpiece (vocab.txt, 21128 tokens, lower_case)");
  EXPECT_EQ(tok->vocab_size(), 21128);
  EXPECT_EQ(tok->pad_id(), PAD);
  auto fast = load_tokenizer(bert_dir("describe-json", false, true));
  EXPECT_EQ(fast->describe(), "wordpiece (tokenizer.json, 21128 tokens, cased)");
  auto forced = load_tokenizer(bert_dir("describe-fast", true, false), TOKENIZER_FAST);
  EXPECT_EQ(forced->describe(), "wordpiece (vocab.txt, 21128 tokens, lower_case, fast)");
}

TEST(WordPieceVocab, TokenizerConfigWinsOverTokenizerJson) {
  // BertTokenizerFast rebuilds the normalizer from tokenizer_config.json's
  // do_lower_case (default true), whatever tokenizer.json says.
  fs::path dir = bert_dir("config-wins", false, true);
  fs::remove(dir / "tokenizer_config.json");
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->encode("NLP", 512), ids_of({"n", "##lp"}));
}

TEST(WordPieceVocab, CheckpointConfigFiles) {
  // The files of a transformers >= 4.34 BERT checkpoint: tokenizer_config.json
  // with added_tokens_decoder, special_tokens_map.json, sentence_bert_config.json.
  fs::path dir = test::scratch_dir("tokenizer/checkpoint");
  copy_writable(vocab_file(), dir / "vocab.txt");
  json decoder = json::object();
  for (auto [token, id] : {std::pair{"[PAD]", PAD}, {"[UNK]", UNK}, {"[CLS]", CLS}, {"[SEP]", SEP}, {"[MASK]", MASK}})
    decoder[std::to_string(id)] = {{"content", token}, {"lstrip", false}, {"normalized", false},
                                   {"rstrip", false},  {"single_word", false}, {"special", true}};
  json config = {{"added_tokens_decoder", decoder}, {"cls_token", "[CLS]"}, {"do_basic_tokenize", true},
                 {"do_lower_case", true}, {"mask_token", "[MASK]"}, {"model_max_length", 128},
                 {"never_split", nullptr}, {"pad_token", "[PAD]"}, {"sep_token", "[SEP]"},
                 {"strip_accents", nullptr}, {"tokenize_chinese_chars", true}, {"tokenizer_class", "BertTokenizer"},
                 {"unk_token", "[UNK]"}};
  test::write_file(dir / "tokenizer_config.json", config.dump(2));
  test::write_file(dir / "special_tokens_map.json",
                   R"({"cls_token": "[CLS]", "mask_token": {"content": "[MASK]", "lstrip": false}, "pad_token": "[PAD]",
                       "sep_token": "[SEP]", "unk_token": "[UNK]"})");
  test::write_file(dir / "sentence_bert_config.json", R"({"max_seq_length": 128, "do_lower_case": false})");
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->encode("  Hello 世界[MASK] ", 128), ids_of({"hello", "世", "界", "[MASK]"}));
  EXPECT_EQ(tok->encode_plain("Hello"), std::vector<int32_t>{plain_vocab().at("hello")});
  EXPECT_EQ(default_max_length(dir), 128);
}

TEST(TokenizerLoading, DefaultMaxLength) {
  fs::path dir = test::scratch_dir("tokenizer/maxlen");
  // Nothing known at all.
  EXPECT_NE(test::error_of<UserError>([&] { default_max_length(dir); }).find("cannot tell the maximum sequence length"),
            std::string::npos);
  // transformers writes int(1e30) for "no limit": then config.json decides.
  test::write_file(dir / "tokenizer_config.json", R"({"model_max_length": 1000000000000000019884624838656})");
  test::write_file(dir / "config.json", R"({"model_type": "xlm-roberta", "max_position_embeddings": 514})");
  EXPECT_EQ(default_max_length(dir), 514);
  test::write_file(dir / "tokenizer_config.json", R"({"model_max_length": 512})");
  EXPECT_EQ(default_max_length(dir), 512);  // min(514, 512)
  test::write_file(dir / "config.json", R"({"model_type": "bert"})");
  test::write_file(dir / "tokenizer_config.json", R"({"model_max_length": 8192})");
  EXPECT_EQ(default_max_length(dir), 512);  // BertConfig's default positions
  test::write_file(dir / "sentence_bert_config.json", R"({"max_seq_length": 8192})");
  EXPECT_EQ(default_max_length(dir), 8192);  // sentence-transformers takes it as is
}

TEST(TokenizerLoading, ErrorsNameTheFile) {
  auto expect_error = [](const fs::path& dir, const std::string& fragment) {
    std::string e = test::error_of<UserError>([&] { load_tokenizer(dir); });
    EXPECT_NE(e.find(fragment), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  fs::path root = test::scratch_dir("tokenizer/errors");
  expect_error(root / "nope", "nope: model folder not found");

  fs::path empty = root / "empty";
  fs::create_directories(empty);
  expect_error(empty, "empty: no tokenizer found; expected tokenizer.json, vocab.txt or sentencepiece.bpe.model");

  fs::path no_cls = root / "no-cls";
  fs::create_directories(no_cls);
  test::write_file(no_cls / "vocab.txt", "[PAD]\n[UNK]\n[SEP]\na\n");
  expect_error(no_cls, "no-cls/vocab.txt: no \"[CLS]\" token (cls_token) in the vocabulary");

  fs::path no_unk = root / "no-unk";
  fs::create_directories(no_unk);
  test::write_file(no_unk / "vocab.txt", "[PAD]\n[CLS]\n[SEP]\n");
  expect_error(no_unk, "no-unk/vocab.txt: no \"[UNK]\" token (unk_token) in the vocabulary");

  fs::path bad_utf8 = root / "bad-utf8";
  fs::create_directories(bad_utf8);
  test::write_file(bad_utf8 / "vocab.txt", "[PAD]\n[UNK]\n\xff\xfe\n");
  expect_error(bad_utf8, "bad-utf8/vocab.txt:3: invalid UTF-8");

  fs::path garbage = root / "garbage";
  fs::create_directories(garbage);
  test::write_file(garbage / "tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", ");
  expect_error(garbage, "garbage/tokenizer.json: malformed JSON");

  fs::path bpe = root / "bpe";
  fs::create_directories(bpe);
  test::write_file(bpe / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})");
  expect_error(bpe, "bpe/tokenizer.json: unsupported tokenizer model type \"BPE\"");

  fs::path no_model = root / "no-model";
  fs::create_directories(no_model);
  test::write_file(no_model / "tokenizer.json", R"({"version": "1.0"})");
  expect_error(no_model, "no-model/tokenizer.json: no model.type");

  // Ids a vocabulary cannot hold, and fields of another JSON type.
  fs::path negative = root / "negative-id";
  test::write_file(negative / "tokenizer.json",
                   R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": -1}}})");
  expect_error(negative, "negative-id/tokenizer.json: model.vocab: the id of \"a\" must be a token id (an integer from 0 to 2^31 - 2), got -1");
  fs::path wrapping = root / "wrapping-id";
  test::write_file(wrapping / "tokenizer.json",
                   R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 4294967301}}})");
  expect_error(wrapping, "wrapping-id/tokenizer.json: model.vocab: the id of \"[UNK]\" must be a token id");
  fs::path typed = root / "typed";
  test::write_file(typed / "tokenizer.json",
                   R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}, "normalizer": {"type": 7}})");
  expect_error(typed, "typed: tokenizer files: type must be string, but is number");

  fs::path gpt2 = root / "gpt2";
  fs::create_directories(gpt2);
  test::write_file(gpt2 / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
  test::write_file(gpt2 / "tokenizer_config.json", R"({"tokenizer_class": "GPT2Tokenizer"})");
  expect_error(gpt2, "gpt2/tokenizer_config.json: unknown tokenizer type \"GPT2Tokenizer\" for vocab.txt; known:");

  fs::path bad_config = root / "bad-config";
  fs::create_directories(bad_config);
  test::write_file(bad_config / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
  test::write_file(bad_config / "tokenizer_config.json", R"({"do_lower_case": "yes"})");
  expect_error(bad_config, "bad-config/tokenizer_config.json: \"do_lower_case\" must be true or false");

  fs::path bad_norm = root / "bad-normalizer";
  fs::create_directories(bad_norm);
  test::write_file(bad_norm / "tokenizer.json",
                   R"({"normalizer": {"type": "NFKC"}, "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})");
  expect_error(bad_norm, "bad-normalizer/tokenizer.json: unsupported normalizer NFKC for WordPiece");

  fs::path bad_spm = root / "bad-spm";
  fs::create_directories(bad_spm);
  test::write_file(bad_spm / "sentencepiece.bpe.model", "not a model");
  expect_error(bad_spm, SentencePieceTokenizer::available() ? "bad-spm/sentencepiece.bpe.model: not a SentencePiece model"
                                                             : "SentencePiece support unavailable");
}

TEST(UnicodeText, PythonLowerAndNormalForms) {
  using unicode::decode_utf8;
  using unicode::encode_utf8;
  // Python: "ΟΔΟΣ ΣΑΣ. Σ".lower() == "οδος σας. σ"; "İ".lower() == "i̇".
  EXPECT_EQ(encode_utf8(unicode::python_lower(decode_utf8("ΟΔΟΣ ΣΑΣ. Σ"))), "οδος σας. σ");
  EXPECT_EQ(encode_utf8(unicode::python_lower(decode_utf8("İ"))), "i\u0307");
  // "ΑΣ'Β": the apostrophe is case-ignorable, B is cased -> not final.
  EXPECT_EQ(encode_utf8(unicode::python_lower(decode_utf8("ΑΣ'Β"))), "ασ'β");
  EXPECT_EQ(encode_utf8(unicode::nfc(decode_utf8("e\u0301"))), "\u00e9");
  EXPECT_EQ(encode_utf8(unicode::nfd(decode_utf8("\u00e9"))), "e\u0301");
  EXPECT_EQ(encode_utf8(unicode::nfd(decode_utf8("한"))), "\u1112\u1161\u11ab");
  EXPECT_EQ(encode_utf8(unicode::nfc(decode_utf8("\u1112\u1161\u11ab"))), "한");
  // Canonical reordering: dot below (ccc 220) before acute (ccc 230).
  EXPECT_EQ(encode_utf8(unicode::nfd(decode_utf8("e\u0301\u0323"))), "e\u0323\u0301");
  EXPECT_EQ(decode_utf8("\xe4\xb8"), std::u32string(2, 0xfffd));  // truncated sequence
}

TEST(UnicodeText, PythonUnicodeVersion) {
  // The generated table of characters newer than Python 3.11's Unicode 14.0
  // must match the linked utf8proc; otherwise rerun
  // scripts/gen_unicode_additions.py with Python 3.11.
  EXPECT_TRUE(unicode::unicode_tables_match()) << "utf8proc " << utf8proc_unicode_version();
  EXPECT_STREQ(unicode::python_unicode_version(), "14.0.0");
  EXPECT_TRUE(unicode::unassigned_in_python(0x1f6dc));   // WIRELESS, Unicode 15.0
  EXPECT_TRUE(unicode::unassigned_in_python(0x31350));   // CJK extension H, 15.0
  EXPECT_TRUE(unicode::unassigned_in_python(0x323af));
  EXPECT_TRUE(unicode::unassigned_in_python(0x2ebf0));   // CJK extension I, 15.1 (Debian 13's utf8proc)
  EXPECT_TRUE(unicode::unassigned_in_python(0x2fff));    // ideographic description character, 15.1
  EXPECT_FALSE(unicode::unassigned_in_python(0x323b0));  // unassigned for both
  EXPECT_FALSE(unicode::unassigned_in_python(0x1fad9));  // JAR, Unicode 14.0
  EXPECT_FALSE(unicode::unassigned_in_python('a'));
}

// --- SentencePiece (XLM-R) ----------------------------------------------------

namespace {

// A small unigram model trained here on the bundled LCQMC-mini sentences plus
// some English; "XYZ" is a user-defined symbol, so its SentencePiece id is
// known by construction: 3, after <unk>=0, <s>=1, </s>=2.
fs::path xlmr_dir() {
  static fs::path dir = [] {
    fs::path d = test::scratch_dir("tokenizer/xlmr");
    std::ifstream in(test::task_dir("LCQMC/mini") / "test.jsonl", std::ios::binary);
    std::string line, corpus;
    while (std::getline(in, line)) {
      json row = json::parse(line);
      corpus += row["sentence1"].get<std::string>() + "\n" + row["sentence2"].get<std::string>() + "\n";
    }
    for (int i = 0; i < 50; ++i)
      corpus += "The quick brown fox jumps over the lazy dog. Hello world, tokenizers are fun!\n";
    test::write_file(d / "corpus.txt", corpus);
    SentencePieceTokenizer::train("--input=" + (d / "corpus.txt").string() + " --model_prefix=" + (d / "spm").string() +
                                  " --vocab_size=1000 --hard_vocab_limit=false --model_type=unigram --user_defined_symbols=XYZ"
                                  " --character_coverage=0.9995 --num_threads=1 --minloglevel=1");
    fs::rename(d / "spm.model", d / "sentencepiece.bpe.model");
    test::write_file(d / "tokenizer_config.json", R"({"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512})");
    test::write_file(d / "config.json", R"({"model_type": "xlm-roberta", "max_position_embeddings": 514})");
    return d;
  }();
  return dir;
}

// fairseq's layout applied to SentencePiece's own ids, written out here
// independently of the tokenizer: 0 (<unk>) -> 3, p -> p + 1.
std::vector<int32_t> fairseq(const std::vector<int32_t>& spm) {
  std::vector<int32_t> out;
  for (int32_t p : spm) out.push_back(p == 0 ? 3 : p + 1);
  return out;
}

std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

#define REQUIRE_SENTENCEPIECE()                                                              \
  if (!SentencePieceTokenizer::available())                                                    \
  GTEST_SKIP() << "the SentencePiece module was not built (libsentencepiece-dev not found)"

TEST(SentencePieceTokenizer, FairseqIdLayout) {
  REQUIRE_SENTENCEPIECE();
  auto loaded = load_tokenizer(xlmr_dir());
  auto* tok = dynamic_cast<SentencePieceTokenizer*>(loaded.get());
  ASSERT_NE(tok, nullptr) << loaded->describe();
  const int32_t n = tok->piece_size();
  EXPECT_GT(n, 700);
  EXPECT_EQ(tok->mask_id(), n + 1);
  EXPECT_EQ(tok->vocab_size(), n + 2);
  EXPECT_EQ(tok->pad_id(), 1);
  EXPECT_EQ(tok->describe(), fmt::format("sentencepiece (sentencepiece.bpe.model, {} tokens, fairseq ids)", n + 2));
  EXPECT_EQ(tok->encode("", 512), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(tok->encode(" \t ", 512), (std::vector<int32_t>{0, 2}));
  // The user-defined symbol: SentencePiece id 3 -> 4.
  std::vector<int32_t> xyz = tok->sentencepiece_ids("XYZ");
  ASSERT_FALSE(xyz.empty());
  EXPECT_EQ(xyz.back(), 3);
  std::vector<int32_t> ids = tok->encode("XYZ", 512);
  EXPECT_EQ(ids.front(), 0);
  EXPECT_EQ(ids[ids.size() - 2], 4);
  EXPECT_EQ(ids.back(), 2);
  // Ordinary texts, and characters never seen in training (SentencePiece's
  // <unk> = 0 -> 3).
  for (const std::string text : {"男生短头发发型", "Hello world, tokenizers are fun!", "怎么样 healthy 瘦脸 2024",
                                  "😀 unseen ☃ symbols Ω"}) {
    std::vector<int32_t> spm = tok->sentencepiece_ids(text);
    EXPECT_EQ(tok->encode(text, 512), concat({{0}, fairseq(spm), {2}})) << text;
    EXPECT_EQ(tok->encode_plain(text), fairseq(spm)) << text;
  }
  std::vector<int32_t> unseen = tok->encode("😀", 512);
  EXPECT_NE(std::find(unseen.begin(), unseen.end(), 3), unseen.end());
}

TEST(SentencePieceTokenizer, LiteralSpecialsStripAndTruncation) {
  REQUIRE_SENTENCEPIECE();
  auto loaded = load_tokenizer(xlmr_dir());
  auto* tok = dynamic_cast<SentencePieceTokenizer*>(loaded.get());
  ASSERT_NE(tok, nullptr);
  // <mask> eats the space on its left (lstrip); each side is encoded alone.
  EXPECT_EQ(tok->encode("hello <mask> world", 512),
            concat({{0}, fairseq(tok->sentencepiece_ids("hello")), {tok->mask_id()},
                    fairseq(tok->sentencepiece_ids(" world")), {2}}));
  EXPECT_EQ(tok->encode("<s>fox</s><pad><unk>", 512),
            concat({{0, 0}, fairseq(tok->sentencepiece_ids("fox")), {2, 1, 3, 2}}));
  // sentence-transformers strips first: leading/trailing U+3000 and \n vanish.
  EXPECT_EQ(tok->encode("\u3000 hello\n", 512), tok->encode("hello", 512));
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "the quick brown fox ";
  std::vector<int32_t> ids = tok->encode(long_text, 16);
  ASSERT_EQ(ids.size(), 16u);
  EXPECT_EQ(ids.front(), 0);
  EXPECT_EQ(ids.back(), 2);
  std::vector<int32_t> plain = tok->encode_plain(long_text);
  EXPECT_GT(plain.size(), 600u);
  EXPECT_TRUE(std::equal(ids.begin() + 1, ids.end() - 1, plain.begin()));
  EXPECT_EQ(default_max_length(xlmr_dir()), 512);  // min(514 positions, 512)
}

TEST(SentencePieceTokenizer, UnigramTokenizerJsonDefersToTheModelFile) {
  REQUIRE_SENTENCEPIECE();
  fs::path dir = test::scratch_dir("tokenizer/xlmr-json");
  auto reference = load_tokenizer(xlmr_dir());
  const int32_t mask = dynamic_cast<SentencePieceTokenizer&>(*reference).mask_id();
  copy_writable(xlmr_dir() / "sentencepiece.bpe.model", dir / "sentencepiece.bpe.model");
  test::write_file(dir / "tokenizer.json", R"({"model": {"type": "Unigram", "unk_id": 3, "vocab": []}})");
  json decoder = {{"0", {{"content", "<s>"}, {"special", true}}},
                  {"1", {{"content", "<pad>"}, {"special", true}}},
                  {"2", {{"content", "</s>"}, {"special", true}}},
                  {"3", {{"content", "<unk>"}, {"special", true}}}};
  decoder[std::to_string(mask)] = {{"content", "<mask>"}, {"lstrip", true}, {"special", true}};
  test::write_file(dir / "tokenizer_config.json",
                   json({{"tokenizer_class", "XLMRobertaTokenizer"}, {"added_tokens_decoder", decoder}}).dump());
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->encode("hello <mask> 男生", 512), reference->encode("hello <mask> 男生", 512));
  // Alone, that stub is not a vocabulary embeval can rebuild a model from.
  fs::remove(dir / "sentencepiece.bpe.model");
  EXPECT_NE(test::error_of<UserError>([&] { load_tokenizer(dir); }).find("xlmr-json/tokenizer.json: a Unigram vocabulary embeval reads has XLM-R's layout"),
            std::string::npos);
}

namespace {

// The fields of a SentencePiece .model file the converter reads, parsed here
// from the protobuf wire format (sentencepiece_model.proto: ModelProto.pieces
// = 1 {piece = 1, score = 2, type = 3}, normalizer_spec = 3
// {precompiled_charsmap = 2}).
struct SpmModelFile {
  std::vector<std::pair<std::string, float>> pieces;
  std::vector<int> types;
  std::string charsmap;
};

uint64_t read_varint(const std::string& b, size_t& i) {
  uint64_t v = 0;
  for (int shift = 0; i < b.size(); shift += 7) {
    const uint8_t c = static_cast<uint8_t>(b[i++]);
    v |= uint64_t{c & 0x7fu} << shift;
    if (!(c & 0x80)) return v;
  }
  throw std::runtime_error("truncated varint");
}

// Calls f(field, wire type, bytes of a length-delimited field or the varint / fixed32 value as bytes).
template <class F>
void for_each_field(const std::string& b, F f) {
  for (size_t i = 0; i < b.size();) {
    const uint64_t key = read_varint(b, i);
    const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
    if (wire == 0) {
      const uint64_t v = read_varint(b, i);
      f(field, wire, std::string(reinterpret_cast<const char*>(&v), 8));
    } else if (wire == 2) {
      const size_t n = read_varint(b, i);
      f(field, wire, b.substr(i, n));
      i += n;
    } else if (wire == 5) {
      f(field, wire, b.substr(i, 4));
      i += 4;
    } else {
      throw std::runtime_error("unexpected wire type");
    }
  }
}

SpmModelFile read_spm_model(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  SpmModelFile m;
  for_each_field(ss.str(), [&](int field, int, const std::string& body) {
    if (field == 1) {
      std::string piece;
      float score = 0;
      int type = 1;
      for_each_field(body, [&](int f, int, const std::string& v) {
        if (f == 1) piece = v;
        if (f == 2) std::memcpy(&score, v.data(), 4);
        if (f == 3) type = static_cast<int>(static_cast<uint8_t>(v[0]));
      });
      m.pieces.emplace_back(piece, score);
      m.types.push_back(type);
    } else if (field == 3) {
      for_each_field(body, [&](int f, int, const std::string& v) {
        if (f == 2) m.charsmap = v;
      });
    }
  });
  return m;
}

std::string base64(const std::string& in) {
  static const char* A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {A[v >> 18], A[(v >> 12) & 63], A[(v >> 6) & 63], A[v & 63]};
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += {A[v >> 18], A[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {A[v >> 18], A[(v >> 12) & 63], A[(v >> 6) & 63], '='};
  }
  return out;
}

// tokenizer.json as transformers' XLMRobertaConverter writes it from a
// SentencePiece model: vocab <s> <pad> </s> <unk>, pieces[3:] with their
// scores, <mask>; unk_id 3; Precompiled + Replace(" {2,}", " ") normalizer;
// Metaspace pre-tokenizer; <s> $A </s>.
json converted_tokenizer_json(const SpmModelFile& m) {
  json vocab = json::array({json::array({"<s>", 0.0}), json::array({"<pad>", 0.0}), json::array({"</s>", 0.0}),
                            json::array({"<unk>", 0.0})});
  for (size_t i = 3; i < m.pieces.size(); ++i) vocab.push_back(json::array({m.pieces[i].first, m.pieces[i].second}));
  vocab.push_back(json::array({"<mask>", 0.0}));
  const int mask = static_cast<int>(vocab.size()) - 1;
  json added = json::array();
  for (auto [id, content] : std::vector<std::pair<int, std::string>>{{0, "<s>"}, {1, "<pad>"}, {2, "</s>"}, {3, "<unk>"}, {mask, "<mask>"}})
    added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", content == "<mask>"},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             json::array({{{"type", "Precompiled"}, {"precompiled_charsmap", base64(m.charsmap)}},
                          {{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}}})}}},
          {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"add_prefix_space", true}, {"prepend_scheme", "always"}}},
          {"post_processor", {{"type", "TemplateProcessing"}}},
          {"model", {{"type", "Unigram"}, {"unk_id", 3}, {"vocab", vocab}, {"byte_fallback", false}}}};
}

}  // namespace

// A checkpoint that ships only tokenizer.json (no sentencepiece.bpe.model)
// gets the same ids as the model file it was converted from, on texts that
// exercise the normalizer (NFKC full-width forms, spaces, controls) and the
// unknown piece.
TEST(SentencePieceTokenizer, UnigramTokenizerJsonAloneMatchesTheModelFile) {
  REQUIRE_SENTENCEPIECE();
  const SpmModelFile spm = read_spm_model(xlmr_dir() / "sentencepiece.bpe.model");
  ASSERT_GT(spm.pieces.size(), 700u);
  ASSERT_EQ(spm.pieces[0].first, "<unk>");
  ASSERT_FALSE(spm.charsmap.empty());  // nmt_nfkc's map: the Precompiled path is exercised
  fs::path dir = test::scratch_dir("tokenizer/xlmr-json-only");
  test::write_file(dir / "tokenizer.json", converted_tokenizer_json(spm).dump());
  test::write_file(dir / "tokenizer_config.json", R"({"tokenizer_class": "XLMRobertaTokenizerFast"})");
  auto reference = load_tokenizer(xlmr_dir());
  auto rebuilt = load_tokenizer(dir);
  EXPECT_EQ(rebuilt->vocab_size(), reference->vocab_size());
  EXPECT_NE(rebuilt->describe().find("tokenizer.json"), std::string::npos) << rebuilt->describe();
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "男生短头发 the quick brown fox ";
  const std::vector<std::string> texts = {
      "男生短头发发型", "Hello world, tokenizers are fun!", "怎么样 healthy 瘦脸 2024", "😀 unseen ☃ symbols Ω",
      "ＦＵＬＬ－ｗｉｄｔｈ　ｆｏｒｍｓ １２３", "café naïve façade", "two  spaces\tand\ttabs   here",
      "zero\u200bwidth\u200djoiners", "ctrl\x01\x7f" "chars", "hello <mask> world", "<s>fox</s><pad><unk>",
      "ﬁ ligature ① circled ㎏", "", "   ", long_text, "XYZ is user-defined in the model file"};
  for (const std::string& t : texts) {
    if (t == texts.back()) continue;  // a user-defined symbol tokenizer.json cannot mark as such
    EXPECT_EQ(rebuilt->encode(t, 512), reference->encode(t, 512)) << t;
    EXPECT_EQ(rebuilt->encode_plain(t), reference->encode_plain(t)) << t;
  }
  // The LCQMC-mini sentences, where the pieces' scores decide between
  // segmentations: all of them agree, and with the scores zeroed some do not
  // (so the scores really are carried over).
  std::ifstream in(test::task_dir("LCQMC/mini") / "test.jsonl", std::ios::binary);
  std::vector<std::string> sentences;
  for (std::string line; std::getline(in, line);) {
    json row = json::parse(line);
    for (const char* k : {"sentence1", "sentence2"}) sentences.push_back(row[k].get<std::string>());
  }
  ASSERT_GT(sentences.size(), 100u);
  json flat = converted_tokenizer_json(spm);
  for (json& v : flat["model"]["vocab"]) v[1] = 0.0;
  fs::path flat_dir = test::scratch_dir("tokenizer/xlmr-json-flat");
  test::write_file(flat_dir / "tokenizer.json", flat.dump());
  auto unscored = load_tokenizer(flat_dir);
  size_t same = 0, unscored_same = 0;
  for (const std::string& t : sentences) {
    const std::vector<int32_t> want = reference->encode(t, 512);
    same += rebuilt->encode(t, 512) == want;
    unscored_same += unscored->encode(t, 512) == want;
  }
  EXPECT_EQ(same, sentences.size());
  EXPECT_LT(unscored_same, sentences.size());
}

TEST(SentencePieceTokenizer, UnigramTokenizerJsonErrorsNameTheFile) {
  REQUIRE_SENTENCEPIECE();
  const json good = converted_tokenizer_json(read_spm_model(xlmr_dir() / "sentencepiece.bpe.model"));
  auto error_for = [](const std::string& name, const json& tj) {
    fs::path dir = test::scratch_dir("tokenizer/bad-unigram-" + name);
    test::write_file(dir / "tokenizer.json", tj.dump());
    return test::error_of<UserError>([&] { load_tokenizer(dir); });
  };
  json t = good;
  t["model"]["vocab"][0][0] = "<S>";
  EXPECT_NE(error_for("layout", t).find("bad-unigram-layout/tokenizer.json: a Unigram vocabulary embeval reads has XLM-R's layout"), std::string::npos);
  t = good;
  t["normalizer"] = {{"type", "NFKC"}};
  EXPECT_NE(error_for("norm", t).find("unsupported normalizer {\"type\":\"NFKC\"} for a Unigram model"), std::string::npos);
  t = good;
  t["normalizer"]["normalizers"][0]["precompiled_charsmap"] = "not base64!";
  EXPECT_NE(error_for("b64", t).find("precompiled_charsmap is not base64"), std::string::npos);
  t = good;
  t["pre_tokenizer"] = {{"type", "ByteLevel"}};
  EXPECT_NE(error_for("pre", t).find("unsupported pre_tokenizer {\"type\":\"ByteLevel\"}"), std::string::npos);
  t = good;
  t["model"]["vocab"][7] = "just a string";
  EXPECT_NE(error_for("pair", t).find("model.vocab[7] is not a [piece, score] pair"), std::string::npos);
  // Fields of another JSON type (found by tests/fuzz/fuzz_tokenizer_json): one line naming the file.
  t = good;
  t["model"]["byte_fallback"] = "yes";
  EXPECT_NE(error_for("type", t).find("bad-unigram-type/tokenizer.json: type must be boolean, but is string"),
            std::string::npos);
  EXPECT_EQ(test::error_of<UserError>([] { sentencepiece_model_from_tokenizer_json(json{{"version", "1.0"}}, "t.json"); }),
            "t.json: expected an object with a \"model\" object");
}

// The encoder tokenizes on worker threads: encode() must be safe to call
// concurrently (the SentencePiece module runs in its own link-map namespace,
// with its own libc).
TEST(TokenizerThreads, ConcurrentEncodeMatchesSerial) {
  std::vector<Reference> refs = read_reference(test::data_path("tokenizer/bert-base-chinese-uncased.jsonl"));
  std::vector<std::string> texts;
  for (size_t i = 0; i < refs.size(); i += 3) texts.push_back(refs[i].text);
  std::vector<fs::path> dirs = {bert_dir("threads", true, false)};
  if (SentencePieceTokenizer::available()) dirs.push_back(xlmr_dir());
  for (const fs::path& dir : dirs) {
    auto tok = load_tokenizer(dir);
    std::vector<std::vector<int32_t>> serial, parallel(texts.size());
    for (const std::string& t : texts) serial.push_back(tok->encode(t, 512));
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w)
      workers.emplace_back([&, w] {
        for (size_t i = w; i < texts.size(); i += 4) parallel[i] = tok->encode(texts[i], 512);
      });
    for (auto& t : workers) t.join();
    EXPECT_EQ(parallel, serial) << tok->describe();
  }
}

// nfc()/nfd() skip utf8proc for text made of "inert" characters; check the
// claim against utf8proc itself, for every code point.
TEST(UnicodeText, InertRangesReallyAreInert) {
  auto map = [](char32_t c, int options) {
    std::string in = unicode::encode_utf8(std::u32string(1, c));
    utf8proc_uint8_t* out = nullptr;
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(in.data()),
                                      static_cast<utf8proc_ssize_t>(in.size()), &out,
                                      static_cast<utf8proc_option_t>(options));
    std::u32string r = n < 0 ? std::u32string() : unicode::decode_utf8(std::string(reinterpret_cast<char*>(out), n));
    std::free(out);
    return r;
  };
  int64_t inert = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const int decompose = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
    std::u32string d = map(c, decompose);
    // No inert character may appear after the first one of a canonical
    // decomposition (it would be the second half of a composition).
    for (size_t k = 1; k < d.size(); ++k) {
      ASSERT_FALSE(unicode::nfc_inert(d[k])) << std::hex << "U+" << uint32_t(c) << " decomposes onto U+" << uint32_t(d[k]);
      ASSERT_FALSE(unicode::nfd_inert(d[k])) << std::hex << "U+" << uint32_t(c);
    }
    if (!unicode::nfc_inert(c) && !unicode::nfd_inert(c)) continue;
    ++inert;
    ASSERT_EQ(utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class, 0) << std::hex << uint32_t(c);
    if (unicode::nfd_inert(c)) {
      ASSERT_EQ(d, std::u32string(1, c)) << std::hex << uint32_t(c);
    }
    if (unicode::nfc_inert(c)) {
      ASSERT_EQ(map(c, UTF8PROC_STABLE | UTF8PROC_COMPOSE), std::u32string(1, c)) << std::hex << uint32_t(c);
    }
  }
  EXPECT_EQ(inert, 0x300 + 20992 + 6592 + 110 + 42 + 16 + 239 + 11172);  // the ranges, summed
  // Hangul syllables are inert for NFC only (NFD splits them into jamo).
  EXPECT_TRUE(unicode::nfc_inert(0xd55c));
  EXPECT_FALSE(unicode::nfd_inert(0xd55c));
}
