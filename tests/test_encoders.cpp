// The weight-free backends: precomputed vectors and the char-ngram baseline.
#include <cmath>

#include <gtest/gtest.h>

#include "datasets/data_error.h"
#include "harness/error.h"
#include "runners/char_ngram_encoder.h"
#include "runners/encoder_factory.h"
#include "runners/precomputed_encoder.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace embeval;

namespace {

double norm(const float* v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return std::sqrt(s);
}

}  // namespace

TEST(PrecomputedEncoder, LooksUpExactThenStrippedText) {
  fs::path f = test::scratch_dir("enc/pre") / "v.jsonl";
  test::write_file(f, "{\"text\": \"a b\", \"embedding\": [1, 2]}\n{\"text\": \"c\", \"embedding\": [3, 4.5]}\n"
                      "{\"text\": \"c\", \"embedding\": [3, 4.5]}\n");
  PrecomputedEncoder e(f);
  EXPECT_EQ(e.dim(), 2);
  EXPECT_EQ(e.size(), 2u);  // an identical repeat is accepted once
  EXPECT_EQ(e.info().fingerprint.rfind("sha256:", 0), 0u);
  Matrix m = e.encode({"c", "  a b\n"}, EncodeOptions{});
  EXPECT_EQ(m.values, (std::vector<float>{3, 4.5f, 1, 2}));
  EXPECT_NE(test::error_of<UserError>([&] { e.encode({"zzz"}, EncodeOptions{}); }).find("no embedding for text \"zzz\""),
            std::string::npos);
}

TEST(PrecomputedEncoder, BadFilesNameTheLine) {
  fs::path dir = test::scratch_dir("enc/pre_bad");
  test::write_file(dir / "a.jsonl", "{\"text\": \"x\", \"embedding\": [1, 2]}\n{\"text\": \"x\", \"embedding\": [1, 3]}\n");
  EXPECT_NE(test::error_of<data::DataError>([&] { PrecomputedEncoder e(dir / "a.jsonl"); })
                .find("a.jsonl:2: text repeats line 1 with a different embedding"),
            std::string::npos);
  test::write_file(dir / "b.jsonl", "{\"text\": \"x\", \"embedding\": [1, \"2\"]}\n");
  EXPECT_NE(test::error_of<data::DataError>([&] { PrecomputedEncoder e(dir / "b.jsonl"); })
                .find("b.jsonl:1: embedding[1] must be a number, got string"),
            std::string::npos);
  test::write_file(dir / "c.jsonl", "{\"text\": \"x\", \"embedding\": []}\n");
  EXPECT_NE(test::error_of<data::DataError>([&] { PrecomputedEncoder e(dir / "c.jsonl"); }).find("c.jsonl:1:"),
            std::string::npos);
  test::write_file(dir / "d.jsonl", "\n");
  EXPECT_NE(test::error_of<UserError>([&] { PrecomputedEncoder e(dir / "d.jsonl"); }).find("no embeddings in file"),
            std::string::npos);
  EXPECT_NE(test::error_of<data::DataError>([&] { PrecomputedEncoder e(dir / "missing.jsonl"); }).find("file not found"),
            std::string::npos);
}

TEST(CharNgramEncoder, UnitNormAndZeroForEmptyText) {
  CharNgramEncoder e;
  Matrix m = e.encode({"今天天气很好", "", "   \t"}, EncodeOptions{});
  EXPECT_NEAR(norm(m.row(0), e.dim()), 1.0, 1e-6);
  EXPECT_EQ(norm(m.row(1), e.dim()), 0.0);
  EXPECT_EQ(norm(m.row(2), e.dim()), 0.0);
}

TEST(CharNgramEncoder, VectorDependsOnTheTextAlone) {
  CharNgramEncoder e;
  Matrix alone = e.encode({"银行卡怎么挂失"}, EncodeOptions{});
  Matrix batch = e.encode({"别的句子", "银行卡怎么挂失"}, EncodeOptions{ROLE_QUERY, "prompt ignored", "", "", {}});
  EXPECT_EQ(std::vector<float>(alone.row(0), alone.row(0) + e.dim()),
            std::vector<float>(batch.row(1), batch.row(1) + e.dim()));
}

TEST(CharNgramEncoder, NfkcCaseFoldingAndWhitespace) {
  // Full-width Latin letters fold to ASCII (NFKC), case folds, runs of
  // whitespace collapse: all three texts have the same n-grams.
  EXPECT_EQ(CharNgramEncoder::normalise("ＡＢ  c"), CharNgramEncoder::normalise("ab c"));
  EXPECT_EQ(CharNgramEncoder::normalise(" AB\u3000C "), CharNgramEncoder::normalise("ab c"));
  EXPECT_EQ(CharNgramEncoder::normalise("ab c"), (std::vector<int32_t>{'a', 'b', ' ', 'c'}));
  // Invalid UTF-8 still yields a vector (bytes) instead of failing.
  EXPECT_FALSE(CharNgramEncoder::normalise("\xff\xfe").empty());
}

// Hand computation for "aaa": n-grams a (x3), aa (x2), aaa (x1); each weighs
// sign * (1 + ln tf) * idf[bucket]; then the row is L2-normalised.
TEST(CharNgramEncoder, SublinearTfIdfWeights) {
  auto features = CharNgramEncoder::features("aaa");
  ASSERT_EQ(features.size(), 3u);
  std::vector<float> counts;
  for (const auto& f : features) counts.push_back(f.count);
  std::sort(counts.begin(), counts.end());
  EXPECT_EQ(counts, (std::vector<float>{1, 2, 3}));

  CharNgramEncoder e;
  Matrix m = e.encode({"aaa"}, EncodeOptions{});
  const float* idf = char_ngram_idf();
  std::vector<double> expect(CharNgramEncoder::DIM, 0.0);
  for (const auto& f : features) expect[f.bucket] += f.sign * (1.0 + std::log(f.count)) * idf[f.bucket];
  double n = 0;
  for (double v : expect) n += v * v;
  n = std::sqrt(n);
  for (int64_t k = 0; k < CharNgramEncoder::DIM; ++k) EXPECT_NEAR(m.row(0)[k], expect[k] / n, 1e-6);
}

TEST(CharNgramEncoder, IdfTableIsFittedNotUniform) {
  // The fitted table: common buckets (CJK unigrams) weigh less than rare ones.
  const float* idf = char_ngram_idf();
  float lo = idf[0], hi = idf[0];
  for (int64_t k = 0; k < CharNgramEncoder::DIM; ++k) lo = std::min(lo, idf[k]), hi = std::max(hi, idf[k]);
  EXPECT_GE(lo, 1.0f);  // smoothed idf is >= 1
  EXPECT_GT(hi - lo, 1.0f);
}

TEST(EncoderFactory, ParsesSpecsAndSuggests) {
  auto e = make_encoder("baseline:char-ngram");
  EXPECT_EQ(e->spec(), "baseline:char-ngram");
  EXPECT_EQ(e->dim(), CharNgramEncoder::DIM);
  EXPECT_NE(test::error_of<UserError>([] { make_encoder("baseline:char-gram"); }).find("did you mean char-ngram?"),
            std::string::npos);
  EXPECT_NE(test::error_of<UserError>([] { make_encoder("precomputd:x"); }).find("did you mean precomputed?"),
            std::string::npos);
  EXPECT_NE(test::error_of<UserError>([] { make_encoder("precomputed:"); }).find("needs a file"), std::string::npos);
}
