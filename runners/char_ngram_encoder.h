#pragma once
// baseline:char-ngram — a no-weights lexical baseline: hashed character
// 1-3-gram TF-IDF. Text is NFKC-normalised and case-folded (utf8proc); each
// n-gram is hashed (FNV-1a 64) to one of DIM buckets with a sign bit
// (feature hashing with alternating signs, so collisions cancel on average);
// tf is sublinear (1 + ln tf) and weighted by a fixed IDF table per bucket,
// fitted once on the training pairs (scripts/fit_char_ngram_idf.cpp); rows
// are L2-normalised. A text's vector depends on that text alone.
#include <cstdint>
#include <string>
#include <vector>

#include "harness/encoder.h"

namespace embeval {

class CharNgramEncoder : public Encoder {
 public:
  static constexpr int64_t DIM = 4096;
  static constexpr int MAX_N = 3;

  CharNgramEncoder();
  Matrix encode(const std::vector<std::string>& texts, const EncodeOptions& options) override;
  const EncoderInfo& info() const override { return info_; }
  std::string prompt_used(const EncodeOptions&) const override { return ""; }  // lexical: prompts ignored

  // The (bucket, sign) features of one text before weighting, exposed so the
  // IDF fitting tool and the tests hash exactly like the encoder.
  struct Feature {
    uint32_t bucket;
    float sign;
    float count;
  };
  static std::vector<Feature> features(const std::string& text);
  // Normalisation used before n-gram extraction (NFKC + case folding, runs of
  // whitespace collapsed to one space, ends stripped), as code points.
  static std::vector<int32_t> normalise(const std::string& text);

 private:
  EncoderInfo info_;
};

// The fitted IDF table (DIM values), from runners/char_ngram_idf.inc.
const float* char_ngram_idf();

}  // namespace embeval
