#include "runners/char_ngram_encoder.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <utf8proc.h>

#include "datasets/sha256.h"
#include "harness/error.h"

namespace embeval {
namespace {

const float IDF_TABLE[CharNgramEncoder::DIM] = {
#include "runners/char_ngram_idf.inc"
};

uint64_t fnv1a(const int32_t* cps, int n) {
  uint64_t h = 1469598103934665603ULL;
  for (int i = 0; i < n; ++i) {
    uint32_t c = static_cast<uint32_t>(cps[i]);
    for (int b = 0; b < 4; ++b) {
      h ^= (c >> (8 * b)) & 0xffu;
      h *= 1099511628211ULL;
    }
  }
  // Mix in the length so that "a" and "a\0\0\0"-like prefixes never collide.
  h ^= static_cast<uint64_t>(n);
  h *= 1099511628211ULL;
  return h;
}

bool is_space(int32_t c) {
  utf8proc_category_t cat = utf8proc_category(c);
  return c == '\t' || c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || cat == UTF8PROC_CATEGORY_ZS ||
         cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

}  // namespace

const float* char_ngram_idf() { return IDF_TABLE; }

std::vector<int32_t> CharNgramEncoder::normalise(const std::string& text) {
  utf8proc_uint8_t* mapped = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                    static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                                                   UTF8PROC_COMPAT | UTF8PROC_CASEFOLD |
                                                                   UTF8PROC_IGNORE));
  std::vector<int32_t> out;
  if (n < 0) {
    // Invalid UTF-8: fall back to bytes so the text still gets a vector.
    for (unsigned char c : text) out.push_back(c);
    return out;
  }
  const utf8proc_uint8_t* p = mapped;
  const utf8proc_uint8_t* end = mapped + n;
  bool pending_space = false;
  while (p < end) {
    utf8proc_int32_t c;
    utf8proc_ssize_t len = utf8proc_iterate(p, end - p, &c);
    if (len <= 0) break;
    p += len;
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (utf8proc_category(c) == UTF8PROC_CATEGORY_CC || utf8proc_category(c) == UTF8PROC_CATEGORY_CF) continue;
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  free(mapped);
  return out;
}

std::vector<CharNgramEncoder::Feature> CharNgramEncoder::features(const std::string& text) {
  std::vector<int32_t> cps = normalise(text);
  std::unordered_map<uint64_t, float> counts;
  const int len = static_cast<int>(cps.size());
  for (int n = 1; n <= MAX_N; ++n) {
    for (int i = 0; i + n <= len; ++i) {
      if (n == 1 && cps[i] == ' ') continue;  // a lone space carries no information
      counts[fnv1a(&cps[i], n)] += 1.0f;
    }
  }
  std::vector<Feature> out;
  out.reserve(counts.size());
  for (const auto& [h, c] : counts)
    out.push_back({static_cast<uint32_t>(h % DIM), (h >> 63) ? -1.0f : 1.0f, c});
  // Deterministic order so float sums do not depend on hash-map iteration.
  std::sort(out.begin(), out.end(), [](const Feature& a, const Feature& b) {
    return a.bucket != b.bucket ? a.bucket < b.bucket : a.sign != b.sign ? a.sign < b.sign : a.count < b.count;
  });
  return out;
}

CharNgramEncoder::CharNgramEncoder() {
  info_.spec = "baseline:char-ngram";
  info_.name = "char-ngram-tfidf";
  info_.dim = DIM;
  info_.dtype = "fp32";
  info_.similarity = SIMILARITY_COSINE;
  // The vectors depend on the algorithm version and the IDF table.
  info_.fingerprint = "char-ngram-v1:" + data::sha256_hex(std::string(reinterpret_cast<const char*>(IDF_TABLE),
                                                                      sizeof(IDF_TABLE)));
}

Matrix CharNgramEncoder::encode(const std::vector<std::string>& texts, const EncodeOptions&) {
  Matrix out(static_cast<int64_t>(texts.size()), DIM);
  for (size_t i = 0; i < texts.size(); ++i) {
    float* row = out.row(static_cast<int64_t>(i));
    for (const Feature& f : features(texts[i])) row[f.bucket] += f.sign * (1.0f + std::log(f.count)) * IDF_TABLE[f.bucket];
    double norm = 0;
    for (int64_t k = 0; k < DIM; ++k) norm += static_cast<double>(row[k]) * row[k];
    if (norm > 0) {
      float inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (int64_t k = 0; k < DIM; ++k) row[k] *= inv;
    }
  }
  return out;
}

}  // namespace embeval
