#pragma once
// WordPiece as Hugging Face's BertTokenizer (slow) and BertTokenizerFast
// compute it, for one text:
//   1. sentence-transformers preprocessing (strip; lower when configured);
//   2. added tokens written in the text ([CLS], [SEP], [MASK], ...) are cut
//      out and map to their ids; the rest goes on piece by piece;
//   3. lower-casing, character by character (the slow tokenizer lower-cases
//      the text with a regex that leaves special tokens alone);
//   4. cleaning: NUL, U+FFFD and control characters (categories Cc, Cf, Cn,
//      Co, Cs except \t \n \r; the fast tokenizer: Cc, Cf, Co) are dropped,
//      whitespace (\t \n \r, space, Zs) becomes a space;
//   5. CJK ideographs (the ranges of _is_chinese_char) get spaces around;
//   6. NFC (the slow tokenizer only);
//   7. split on whitespace; per word, unless it is in never_split (or, for
//      the slow tokenizer, a special token): accents
//      stripped (NFD, drop Mn) when strip_accents, then split on punctuation
//      (ASCII symbols and Unicode P*);
//   8. each word longer than max_input_chars_per_word is [UNK]; otherwise
//      greedy longest-match-first pieces, continuations prefixed "##"; a word
//      with an unmatched rest is one [UNK].
// encode() wraps the ids in the post-processor's specials ([CLS] ... [SEP])
// after truncating the word pieces so the total is at most max_length.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runners/tokenizers/added_tokens.h"
#include "runners/tokenizers/tokenizer.h"

namespace embeval {

struct WordPieceOptions {
  bool lower_case = true;
  bool strip_accents = true;  // HF: strip_accents=None follows lower_case
  bool tokenize_chinese_chars = true;
  bool clean_text = true;
  // BertTokenizer (slow) rather than BertTokenizerFast. They differ on rare
  // characters only:
  //  - the slow one NFC-normalises the cleaned text (matters for cased
  //    vocabularies on decomposed or singleton characters: "e\u0301", U+F900);
  //  - the slow one drops unassigned code points (any C* category), the fast
  //    one drops only Cc, Cf and Co, so "ab\u0378c" is [UNK] there;
  //  - the fast one's CJK extension E starts at U+2B920, not U+2B820;
  //  - the slow one keeps a special token that only appears after cleaning
  //    ("[SE\x00P]") whole, the fast one splits it on punctuation;
  //  - the slow one takes every property from Python 3.11's unicodedata
  //    (Unicode 14.0: characters new in 15.0 are unassigned); the fast one
  //    takes categories from the unicode_categories crate (tables of 2016),
  //    which this code does not reproduce: a Cf, Mn or P* character assigned
  //    after Unicode 9.0 may still tokenize differently from
  //    BertTokenizerFast.
  bool slow = true;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  int64_t max_input_chars_per_word = 100;
  std::vector<std::string> never_split;
  std::vector<AddedToken> added_tokens;  // matched in the text before anything else
  std::vector<int32_t> prefix_ids;       // the post-processor: [CLS]
  std::vector<int32_t> suffix_ids;       // [SEP]
  int32_t pad_id = 0;
  SentencePreprocess preprocess;
  std::string source;  // for describe(): "vocab.txt" or "tokenizer.json"
};

class WordPieceTokenizer : public Tokenizer {
 public:
  // vocab: token -> id; vocab_size: the number of ids (at least the largest
  // id + 1, added tokens included). Throws UserError when the unk token is
  // missing.
  WordPieceTokenizer(std::unordered_map<std::string, int32_t> vocab, int64_t vocab_size, WordPieceOptions options);

  std::vector<int32_t> encode(const std::string& text, int64_t max_length) const override;
  std::vector<int32_t> encode_plain(const std::string& text) const override;
  int32_t pad_id() const override { return options_.pad_id; }
  int64_t vocab_size() const override { return vocab_size_; }
  std::string describe() const override;

  // The pieces of one word (step 8), as ids.
  void wordpiece(std::u32string_view word, std::vector<int32_t>& out) const;
  const WordPieceOptions& options() const { return options_; }

  // vocab.txt: one token per line, lines split like Python's readlines() in
  // text mode (\n, \r\n or \r; a U+2028 inside a line is part of the token);
  // a repeated token keeps its last line number, as transformers' load_vocab.
  // Invalid UTF-8 is an error naming file:line.
  static std::unordered_map<std::string, int32_t> read_vocab_txt(const std::string& path, int64_t* lines);

 private:
  void encode_piece(std::string_view text, std::vector<int32_t>& out) const;
  int32_t lookup(const std::string& token) const;

  std::unordered_map<std::string, int32_t> vocab_;
  int64_t vocab_size_;
  WordPieceOptions options_;
  int32_t unk_id_;
  std::unordered_set<std::u32string> never_split_;   // never_split: looked up whole
  std::unordered_set<std::u32string> keep_whole_;    // never_split + special tokens (slow)
  size_t keep_whole_min_ = SIZE_MAX, keep_whole_max_ = 0;  // their lengths, to skip most lookups
};

}  // namespace embeval
