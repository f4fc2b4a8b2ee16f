// The embedding cache: vectors come back exactly, keyed by fingerprint, role
// and prompt; a damaged file is an error naming it; a run with the cache
// encodes nothing the second time and scores the same.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "harness/embedding_cache.h"
#include "harness/error.h"
#include "harness/result_store.h"
#include "harness/run_loop.h"
#include "tests/test_util.h"

using namespace embeval;
namespace fs = std::filesystem;

namespace {

Matrix vectors(const std::vector<std::string>& texts, float salt) {
  Matrix m(static_cast<int64_t>(texts.size()), 4);
  for (size_t i = 0; i < texts.size(); ++i)
    for (int64_t c = 0; c < 4; ++c)
      m.row(static_cast<int64_t>(i))[c] = salt + static_cast<float>(texts[i].size()) * 0.5f + static_cast<float>(c);
  return m;
}

// Counts the texts it is asked to encode.
class CountingEncoder : public Encoder {
 public:
  CountingEncoder() {
    info_.spec = "test:counting";
    info_.fingerprint = "fp-1";
    info_.dim = 4;
  }
  Matrix encode(const std::vector<std::string>& texts, const EncodeOptions&) override {
    encoded += static_cast<int64_t>(texts.size());
    Matrix m(static_cast<int64_t>(texts.size()), 4);
    for (size_t i = 0; i < texts.size(); ++i)
      for (size_t b = 0; b < texts[i].size(); ++b)
        m.row(static_cast<int64_t>(i))[b % 4] += static_cast<float>(static_cast<unsigned char>(texts[i][b])) / 256.f;
    return m;
  }
  const EncoderInfo& info() const override { return info_; }
  int64_t encoded = 0;

 private:
  EncoderInfo info_;
};

}  // namespace

TEST(EmbeddingCache, ReturnsStoredVectorsByFingerprintRoleAndPrompt) {
  const fs::path dir = test::scratch_dir("cache/roundtrip");
  const std::vector<std::string> texts = {"一", "二二", "three"};
  {
    EmbeddingCache c(dir);
    c.store("fp", "query", "q: ", {texts[0], texts[2]}, vectors({texts[0], texts[2]}, 1.f));
  }
  EmbeddingCache c(dir);  // a new process: read from the files
  Matrix out(3, 4);
  std::vector<bool> found = c.lookup("fp", "query", "q: ", 4, texts, out);
  EXPECT_EQ(found, (std::vector<bool>{true, false, true}));
  Matrix want = vectors(texts, 1.f);
  for (int r : {0, 2})
    for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(out.row(r)[k], want.row(r)[k]);
  Matrix other(3, 4);
  EXPECT_EQ(c.lookup("fp2", "query", "q: ", 4, texts, other), std::vector<bool>(3, false));  // another model
  EXPECT_EQ(c.lookup("fp", "passage", "q: ", 4, texts, other), std::vector<bool>(3, false));
  EXPECT_EQ(c.lookup("fp", "query", "", 4, texts, other), std::vector<bool>(3, false));
}

TEST(EmbeddingCache, DamagedFileIsAnErrorNamingIt) {
  const fs::path dir = test::scratch_dir("cache/damaged");
  { EmbeddingCache(dir).store("fp", "text", "", {"a", "b"}, vectors({"a", "b"}, 0.f)); }
  fs::path file;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().extension() == ".vec") file = e.path();
  ASSERT_FALSE(file.empty());
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
    f.put('\x7f');
  }
  Matrix out(1, 4);
  try {
    EmbeddingCache(dir).lookup("fp", "text", "", 4, {"a"}, out);
    FAIL() << "a damaged cache file was used";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(file.string() + ": corrupt embedding cache file (checksum mismatch)"),
              std::string::npos)
        << e.what();
  }
  fs::resize_file(file, 10);  // truncated
  EXPECT_THROW(EmbeddingCache(dir).lookup("fp", "text", "", 4, {"a"}, out), UserError);
}

TEST(EmbeddingCache, SecondRunEncodesNothingAndScoresTheSame) {
  const fs::path dir = test::scratch_dir("cache/run");
  const auto task = test::source_dir() / "datasets/cmteb/STSB/mini";
  ResultStore store(dir / "r.sqlite");
  RunOptions options;
  options.latency_samples = 0;
  options.cache_dir = dir / "cache";
  options.force = true;
  CountingEncoder first, second;
  run_tasks(first, {task}, store, RunRecord(), options);
  const double a = *store.latest_results()[0].main_score;
  run_tasks(second, {task}, store, RunRecord(), options);
  EXPECT_GT(first.encoded, 0);
  EXPECT_EQ(second.encoded, 0);
  EXPECT_EQ(*store.latest_results()[0].main_score, a);
}
