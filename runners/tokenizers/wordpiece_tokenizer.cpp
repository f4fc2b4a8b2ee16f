#include "runners/tokenizers/wordpiece_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <utf8proc.h>

#include "datasets/text_util.h"
#include "harness/error.h"
#include "runners/tokenizers/unicode_text.h"

namespace embeval {
namespace {

// Unicode categories. The slow tokenizer sees them as Python's unicodedata
// gives them: characters newer than its Unicode version are unassigned (Cn).
utf8proc_category_t category(char32_t c, bool slow = true) {
  if (c >= 0x4e00 && c <= 0x9fff) return UTF8PROC_CATEGORY_LO;  // the common case, same in every version since 14.0
  if (slow && unicode::unassigned_in_python(c)) return UTF8PROC_CATEGORY_CN;
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

// What cleaning drops besides NUL and U+FFFD. transformers' _is_control:
// every C* category (Cc, Cf, Cn, Co, Cs), so unassigned code points go too.
// tokenizers' BertNormalizer: char::is_other() of the unicode_categories
// crate, which is Cc, Cf and Co only: an unassigned code point stays (and
// becomes [UNK]). \t \n \r are whitespace for both.
bool is_control(char32_t c, bool slow) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (c < 0x20 || c == 0x7f) return true;
  if (c < 0x80) return false;
  switch (category(c, slow)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CO:
      return true;
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CS:
      return slow;
    default:
      return false;
  }
}

// _is_whitespace: space, \t \n \r and category Zs.
bool is_whitespace(char32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
  if (c < 0x80) return false;
  return category(c) == UTF8PROC_CATEGORY_ZS;
}

// _is_punctuation: all non-alphanumeric ASCII symbols count even where
// Unicode says Sm/Sc/Sk ("$", "^", "`"), plus every P* character.
bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  if (c < 0x80) return false;
  switch (category(c)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

// _is_chinese_char: the CJK Unified Ideographs blocks and extensions A-E
// plus the compatibility ideographs, exactly as BERT defines them (not
// Hiragana, Katakana or Hangul; not extensions F-H). tokenizers' Rust copy
// starts extension E at U+2B920 instead of U+2B820, so BertTokenizerFast
// leaves U+2B820-U+2B91F inside words.
bool is_chinese_char(char32_t c, bool slow) {
  return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x20000 && c <= 0x2a6df) ||
         (c >= 0x2a700 && c <= 0x2b73f) || (c >= 0x2b740 && c <= 0x2b81f) ||
         (c >= (slow ? 0x2b820u : 0x2b920u) && c <= 0x2ceaf) || (c >= 0xf900 && c <= 0xfaff) ||
         (c >= 0x2f800 && c <= 0x2fa1f);
}

// Where words split. The slow tokenizer splits with Python's str.split(),
// the fast one with Rust's char::is_whitespace (Unicode White_Space); after
// cleaning, both see only spaces and U+2028/U+2029, which both split on.
bool splits_words(char32_t c, bool python) {
  if (python) return unicode::python_isspace(c);
  return (c >= 0x09 && c <= 0x0d) || c == ' ' || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// NFD, then drop the nonspacing marks (Mn).
void strip_accents(std::u32string& word) {
  bool inert = true;
  for (char32_t c : word) inert = inert && unicode::nfd_inert(c);
  if (inert) return;
  std::u32string decomposed = unicode::nfd(word);
  word.clear();
  for (char32_t c : decomposed)
    if (c < 0x300 || category(c) != UTF8PROC_CATEGORY_MN) word.push_back(c);
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::unordered_map<std::string, int32_t> vocab, int64_t vocab_size,
                                       WordPieceOptions options)
    : vocab_(std::move(vocab)), vocab_size_(vocab_size), options_(std::move(options)) {
  auto unk = vocab_.find(options_.unk_token);
  if (unk == vocab_.end())
    fail("{}: the unknown token \"{}\" is not in the vocabulary", options_.source, options_.unk_token);
  unk_id_ = unk->second;
  for (const auto& [token, id] : vocab_) vocab_size_ = std::max<int64_t>(vocab_size_, int64_t{id} + 1);
  for (const AddedToken& t : options_.added_tokens) vocab_size_ = std::max<int64_t>(vocab_size_, int64_t{t.id} + 1);
  for (const std::string& t : options_.never_split) {
    never_split_.insert(unicode::decode_utf8(t));
    keep_whole_.insert(unicode::decode_utf8(t));
  }
  if (options_.slow)
    for (const AddedToken& t : options_.added_tokens)
      if (t.special) keep_whole_.insert(unicode::decode_utf8(t.content));
  for (const std::u32string& w : keep_whole_) {
    keep_whole_min_ = std::min(keep_whole_min_, w.size());
    keep_whole_max_ = std::max(keep_whole_max_, w.size());
  }
}

int32_t WordPieceTokenizer::lookup(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? unk_id_ : it->second;
}

void WordPieceTokenizer::wordpiece(std::u32string_view word, std::vector<int32_t>& out) const {
  if (static_cast<int64_t>(word.size()) > options_.max_input_chars_per_word) {
    out.push_back(unk_id_);
    return;
  }
  // UTF-8 byte offset of each character, so candidates are substrings.
  thread_local std::string utf8, candidate;
  thread_local std::vector<size_t> offset;
  utf8.clear();
  offset.resize(word.size() + 1);
  for (size_t i = 0; i < word.size(); ++i) {
    offset[i] = utf8.size();
    unicode::append_utf8(word[i], utf8);
  }
  offset[word.size()] = utf8.size();
  const std::string& prefix = options_.continuing_subword_prefix;
  size_t first = out.size();
  for (size_t start = 0; start < word.size();) {
    int32_t id = -1;
    size_t end = word.size();
    for (; end > start; --end) {
      candidate.clear();
      if (start > 0) candidate += prefix;
      candidate.append(utf8, offset[start], offset[end] - offset[start]);
      auto it = vocab_.find(candidate);
      if (it != vocab_.end()) {
        id = it->second;
        break;
      }
    }
    if (id < 0) {
      out.resize(first);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(id);
    start = end;
  }
}

void WordPieceTokenizer::encode_piece(std::string_view text, std::vector<int32_t>& out) const {
  const WordPieceOptions& o = options_;
  std::u32string raw = unicode::decode_utf8(text);
  std::u32string s;
  s.reserve(raw.size() + 16);
  // Lower-casing comes first in the slow tokenizer (PreTrainedTokenizer.tokenize)
  // and after accent stripping in the fast one; both lower-case character by
  // character (no Final_Sigma), so where it happens does not change the ids.
  if (o.lower_case) {
    for (char32_t c : raw) unicode::append_lower(c, s);
  } else {
    s = raw;
  }
  std::u32string cleaned;
  cleaned.reserve(s.size() + 16);
  for (char32_t c : s) {
    if (o.clean_text) {
      if (c == 0 || c == 0xfffd || is_control(c, o.slow)) continue;
      if (is_whitespace(c)) c = ' ';
    }
    if (o.tokenize_chinese_chars && is_chinese_char(c, o.slow)) {
      cleaned.push_back(' ');
      cleaned.push_back(c);
      cleaned.push_back(' ');
    } else {
      cleaned.push_back(c);
    }
  }
  if (o.slow && !std::all_of(cleaned.begin(), cleaned.end(), unicode::nfc_inert)) cleaned = unicode::nfc(cleaned);

  std::u32string piece, word;
  auto flush = [&] {
    if (!piece.empty()) wordpiece(piece, out);
    piece.clear();
  };
  for (size_t i = 0; i < cleaned.size();) {
    if (splits_words(cleaned[i], o.slow)) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cleaned.size() && !splits_words(cleaned[j], o.slow)) ++j;
    word.assign(cleaned, i, j - i);
    i = j;
    if (!keep_whole_.empty() && word.size() >= keep_whole_min_ && word.size() <= keep_whole_max_ &&
        keep_whole_.count(word)) {
      // BasicTokenizer leaves these alone; BertTokenizer._tokenize then looks
      // never_split words up as they are and WordPieces the special tokens.
      if (never_split_.count(word))
        out.push_back(lookup(unicode::encode_utf8(word)));
      else
        wordpiece(word, out);
      continue;
    }
    if (o.strip_accents) strip_accents(word);
    for (char32_t c : word) {
      if (is_punctuation(c)) {
        flush();
        piece.push_back(c);
        flush();
      } else {
        piece.push_back(c);
      }
    }
    flush();
  }
}

std::vector<int32_t> WordPieceTokenizer::encode_plain(const std::string& text) const {
  std::string prepared = options_.preprocess.apply(text);
  std::vector<int32_t> ids;
  for (const TextPiece& p : split_added_tokens(prepared, options_.added_tokens)) {
    if (p.id >= 0)
      ids.push_back(p.id);
    else
      encode_piece(p.text, ids);
  }
  return ids;
}

std::vector<int32_t> WordPieceTokenizer::encode(const std::string& text, int64_t max_length) const {
  const int64_t specials = static_cast<int64_t>(options_.prefix_ids.size() + options_.suffix_ids.size());
  if (max_length < specials)
    fail("max length {} is too small: the special tokens alone take {}", max_length, specials);
  std::vector<int32_t> body = encode_plain(text);
  if (static_cast<int64_t>(body.size()) > max_length - specials) body.resize(static_cast<size_t>(max_length - specials));
  std::vector<int32_t> ids;
  ids.reserve(body.size() + static_cast<size_t>(specials));
  ids.insert(ids.end(), options_.prefix_ids.begin(), options_.prefix_ids.end());
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), options_.suffix_ids.begin(), options_.suffix_ids.end());
  return ids;
}

std::string WordPieceTokenizer::describe() const {
  const WordPieceOptions& o = options_;
  std::string flags = o.lower_case ? "lower_case" : "cased";
  if (o.strip_accents != o.lower_case) flags += o.strip_accents ? ", strip_accents" : ", keep_accents";
  if (!o.tokenize_chinese_chars) flags += ", no_chinese_split";
  if (o.preprocess.lower) flags += ", st_lower_case";
  // The rules followed where the two transformers implementations differ,
  // when they are not the ones the file type implies.
  if (o.slow != (o.source == "vocab.txt")) flags += o.slow ? ", slow" : ", fast";
  return fmt::format("wordpiece ({}, {} tokens, {})", o.source, vocab_size_, flags);
}

std::unordered_map<std::string, int32_t> WordPieceTokenizer::read_vocab_txt(const std::string& path,
                                                                            int64_t* lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the vocabulary", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string data = buffer.str();
  std::unordered_map<std::string, int32_t> vocab;
  int32_t line = 0;
  size_t start = 0;
  while (start < data.size()) {
    size_t end = data.find_first_of("\r\n", start);
    size_t next = end == std::string::npos ? data.size() : end + 1;
    if (end == std::string::npos) end = data.size();
    if (end < data.size() && data[end] == '\r' && next < data.size() && data[next] == '\n') ++next;
    std::string token = data.substr(start, end - start);
    if (!data::is_valid_utf8(token)) fail("{}:{}: invalid UTF-8 in the vocabulary", path, line + 1);
    vocab[token] = line;
    ++line;
    start = next;
  }
  *lines = line;
  return vocab;
}

}  // namespace embeval
