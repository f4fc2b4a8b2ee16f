#pragma once
// What every Hugging Face tokenizer does before its model sees a text: the
// sentence-transformers preprocessing (str.strip(), and str.lower() when
// sentence_bert_config.json says do_lower_case), then cutting out the added
// tokens ([CLS], [MASK], <mask>, ...) written literally in the text, so that
// they map to their own ids instead of being split into pieces.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace embeval {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  // Whitespace on the token's left / right is swallowed with it
  // (transformers' AddedToken(lstrip=..., rstrip=...)).
  bool lstrip = false;
  bool rstrip = false;
  // Special tokens ([CLS], <mask>, additional_special_tokens) as opposed to
  // tokens merely added to the vocabulary.
  bool special = true;
};

struct TextPiece {
  std::string_view text;
  int32_t id = -1;  // >= 0: the piece is this added token
};

// Leftmost occurrence first, the longest token when several start there (as
// transformers' Trie.split and tokenizers' AddedVocabulary both match).
// Empty pieces are dropped. The views point into `text`.
std::vector<TextPiece> split_added_tokens(std::string_view text, const std::vector<AddedToken>& tokens);

struct SentencePreprocess {
  bool strip = true;   // sentence-transformers strips every text
  bool lower = false;  // sentence_bert_config.json do_lower_case
  std::string apply(std::string_view text) const;
};

// Python's str.lstrip() / str.rstrip() with no argument.
std::string_view python_lstrip(std::string_view s);
std::string_view python_rstrip(std::string_view s);

}  // namespace embeval
