#pragma once
// precomputed:FILE — vectors computed elsewhere (an API, another framework),
// as JSONL lines {"text": ..., "embedding": [...]}. A text the task needs but
// the file lacks is an error naming it. A text is looked up as given, then
// whitespace-stripped (sentence-transformers strips texts before encoding).
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include "harness/encoder.h"

namespace embeval {

class PrecomputedEncoder : public Encoder {
 public:
  explicit PrecomputedEncoder(const std::filesystem::path& file);
  Matrix encode(const std::vector<std::string>& texts, const EncodeOptions& options) override;
  const EncoderInfo& info() const override { return info_; }
  // Vectors are looked up by the text alone: no prompt is applied.
  std::string prompt_used(const EncodeOptions&) const override { return ""; }
  size_t size() const { return index_.size(); }

 private:
  std::filesystem::path file_;
  EncoderInfo info_;
  std::unordered_map<std::string, int64_t> index_;  // text -> row
  std::vector<float> values_;
};

}  // namespace embeval
