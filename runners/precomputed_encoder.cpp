#include "runners/precomputed_encoder.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "datasets/jsonl_reader.h"
#include "datasets/sha256.h"
#include "datasets/text_util.h"
#include "harness/error.h"

namespace embeval {

PrecomputedEncoder::PrecomputedEncoder(const std::filesystem::path& file) : file_(file) {
  data::JsonlReader r(file);
  nlohmann::json row;
  int64_t dim = -1;
  std::unordered_map<std::string, int64_t> first_line;
  std::vector<float> vec;
  while (r.next(row)) {
    std::string text = r.get_string(row, "text");
    auto it = row.find("embedding");
    if (it == row.end()) r.fail("missing field \"embedding\"");
    if (!it->is_array() || it->empty())
      r.fail(fmt::format("field \"embedding\" must be a non-empty array of numbers, got {}", data::json_type_name(*it)));
    vec.clear();
    for (size_t k = 0; k < it->size(); ++k) {
      const auto& x = (*it)[k];
      if (!x.is_number()) r.fail(fmt::format("embedding[{}] must be a number, got {}", k, data::json_type_name(x)));
      double d = x.get<double>();
      if (!std::isfinite(d) || std::fabs(d) > 3.4e38) r.fail(fmt::format("embedding[{}] is not a finite float32", k));
      vec.push_back(static_cast<float>(d));
    }
    if (dim < 0) dim = static_cast<int64_t>(vec.size());
    if (static_cast<int64_t>(vec.size()) != dim)
      r.fail(fmt::format("embedding has {} dimensions; expected {} like the lines before", vec.size(), dim));
    auto [pos, inserted] = index_.emplace(text, static_cast<int64_t>(values_.size() / static_cast<size_t>(dim)));
    if (!inserted) {
      if (std::memcmp(values_.data() + pos->second * dim, vec.data(), vec.size() * sizeof(float)) != 0)
        r.fail(fmt::format("text repeats line {} with a different embedding", first_line[text]));
      continue;
    }
    first_line[text] = r.line();
    values_.insert(values_.end(), vec.begin(), vec.end());
  }
  if (dim < 0) fail("{}: no embeddings in file", file.string());
  info_.spec = "precomputed:" + file.string();
  info_.name = file.stem().string();
  info_.dim = dim;
  info_.fingerprint = "sha256:" + data::sha256_file(file);
  info_.dtype = "fp32";
}

Matrix PrecomputedEncoder::encode(const std::vector<std::string>& texts, const EncodeOptions&) {
  Matrix out(static_cast<int64_t>(texts.size()), info_.dim);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto it = index_.find(texts[i]);
    if (it == index_.end()) it = index_.find(data::python_strip(texts[i]));
    if (it == index_.end()) {
      fail("{}: no embedding for text \"{}\"", file_.string(), data::utf8_preview(texts[i], 80));
    }
    std::memcpy(out.row(static_cast<int64_t>(i)), values_.data() + it->second * info_.dim,
                static_cast<size_t>(info_.dim) * sizeof(float));
  }
  return out;
}

}  // namespace embeval
