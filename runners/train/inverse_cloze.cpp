#include "runners/train/inverse_cloze.h"

#include <algorithm>
#include <map>
#include <random>
#include <unordered_map>

#include "runners/tokenizers/unicode_text.h"

namespace embeval {

using unicode::decode_utf8;
using unicode::encode_utf8;

namespace {

bool terminator(char32_t c) {
  return c == U'。' || c == U'！' || c == U'？' || c == U'!' || c == U'?' || c == U'；' || c == U';' || c == U'\n';
}

bool closing(char32_t c) {
  return c == U'”' || c == U'’' || c == U'」' || c == U'』' || c == U'）' || c == U')' || c == U'】' || c == U'》' ||
         c == U'"' || c == U'\'';
}

bool space(char32_t c) { return c == U' ' || c == U'\t' || c == U'\r' || c == U'\n' || c == U'\u3000'; }

size_t visible_chars(const std::u32string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char32_t c) { return !space(c); }));
}

bool is_passage_kind(const std::string& kind) { return kind == "qa" || kind == "title-content"; }

}  // namespace

std::vector<std::string> split_sentences(const std::string& text) {
  const std::u32string s = decode_utf8(text);
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    if (!terminator(s[i])) {
      ++i;
      continue;
    }
    while (i < s.size() && (terminator(s[i]) || closing(s[i]))) ++i;
    out.push_back(encode_utf8(std::u32string_view(s).substr(start, i - start)));
    start = i;
  }
  if (start < s.size()) out.push_back(encode_utf8(std::u32string_view(s).substr(start)));
  return out;
}

std::vector<data::TrainingPair> inverse_cloze_pairs(const std::vector<data::TrainingPair>& pairs,
                                                    const InverseClozeOptions& o) {
  // Distinct passages in first-appearance order, and the passages labelled
  // together with each (the positive and negatives of one query).
  std::vector<std::string> passages;
  std::unordered_map<std::string, size_t> index;
  std::vector<std::vector<size_t>> siblings;
  auto id = [&](const std::string& p) {
    auto [it, inserted] = index.emplace(p, passages.size());
    if (inserted) {
      passages.push_back(p);
      siblings.emplace_back();
    }
    return it->second;
  };
  for (const data::TrainingPair& tp : pairs) {
    if (!is_passage_kind(tp.kind)) continue;
    std::vector<size_t> group = {id(tp.positive)};
    for (const std::string& n : tp.negatives) group.push_back(id(n));
    for (size_t a : group)
      for (size_t b : group)
        if (a != b && std::find(siblings[a].begin(), siblings[a].end(), b) == siblings[a].end()) siblings[a].push_back(b);
  }
  std::mt19937_64 rng(o.seed);
  std::bernoulli_distribution cut(o.remove);
  std::vector<data::TrainingPair> out;
  for (size_t p = 0; p < passages.size(); ++p) {
    const std::vector<std::string> sentences = split_sentences(passages[p]);
    if (sentences.size() < 2) continue;  // nothing would be left of the passage
    for (size_t s = 0; s < sentences.size(); ++s) {
      const std::u32string q = decode_utf8(sentences[s]);
      const size_t n = visible_chars(q);
      if (n < o.min_chars || n > o.max_chars) continue;
      data::TrainingPair tp;
      tp.kind = kInverseClozeKind;
      // The query without the spaces and line breaks around it.
      size_t b = 0, e = q.size();
      while (b < e && space(q[b])) ++b;
      while (e > b && space(q[e - 1])) --e;
      tp.query = encode_utf8(std::u32string_view(q).substr(b, e - b));
      if (cut(rng)) {
        for (size_t r = 0; r < sentences.size(); ++r)
          if (r != s) tp.positive += sentences[r];
        if (visible_chars(decode_utf8(tp.positive)) == 0) continue;
      } else {
        tp.positive = passages[p];
      }
      for (size_t k = 0; k < siblings[p].size() && k < o.max_negatives; ++k) tp.negatives.push_back(passages[siblings[p][k]]);
      out.push_back(std::move(tp));
    }
  }
  return out;
}

}  // namespace embeval
