// EvalContext: encodes each distinct text once, checks the encoder's output,
// and keeps the texts it saw for single-text latency sampling.
#include <limits>

#include <gtest/gtest.h>

#include "datasets/task_spec.h"
#include "harness/error.h"
#include "harness/task_type.h"

using namespace embeval;

namespace {

// Encodes a text as [length, number of calls so far]; can be told to emit NaN.
class CountingEncoder : public Encoder {
 public:
  CountingEncoder() {
    info_.spec = "test:counting";
    info_.dim = 2;
  }
  Matrix encode(const std::vector<std::string>& texts, const EncodeOptions&) override {
    ++calls;
    encoded += static_cast<int64_t>(texts.size());
    Matrix m(static_cast<int64_t>(texts.size()), 2);
    for (size_t i = 0; i < texts.size(); ++i) {
      m.row(static_cast<int64_t>(i))[0] = texts[i] == "nan" ? std::numeric_limits<float>::quiet_NaN()
                                                            : static_cast<float>(texts[i].size());
      m.row(static_cast<int64_t>(i))[1] = static_cast<float>(calls);
    }
    return m;
  }
  const EncoderInfo& info() const override { return info_; }
  int calls = 0;
  int64_t encoded = 0;

 private:
  EncoderInfo info_;
};

}  // namespace

TEST(EvalContext, EncodesDistinctTextsOnceInInputOrder) {
  CountingEncoder enc;
  data::TaskSpec spec;
  spec.name = "T";
  EvalContext ctx(enc, spec);
  Matrix m = ctx.encode({"aa", "b", "aa", "ccc"}, ROLE_PASSAGE, "sentence");
  EXPECT_EQ(enc.encoded, 3);  // "aa" once
  ASSERT_EQ(m.rows, 4);
  EXPECT_EQ(m.row(0)[0], 2.0f);
  EXPECT_EQ(m.row(2)[0], 2.0f);
  EXPECT_EQ(m.row(3)[0], 3.0f);
  EXPECT_EQ(ctx.stats().items, 3);
  EXPECT_EQ(ctx.stats().calls, 1);
  EXPECT_EQ(ctx.stats().tokens, -1);
}

TEST(EvalContext, NonFiniteOutputNamesTheText) {
  CountingEncoder enc;
  data::TaskSpec spec;
  spec.name = "T";
  EvalContext ctx(enc, spec);
  try {
    ctx.encode({"ok", "nan"}, ROLE_QUERY, "query");
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("T: encoder test:counting returned a non-finite value (nan) at dimension 0 "
                                         "for query text \"nan\""),
              std::string::npos)
        << e.what();
  }
}

TEST(EvalContext, LatencySamplePrefersQueriesAndSpreadsEvenly) {
  CountingEncoder enc;
  data::TaskSpec spec;
  EvalContext ctx(enc, spec);
  Role role;
  EXPECT_TRUE(ctx.latency_sample(5, &role).empty());
  ctx.encode({"p0", "p1", "p2"}, ROLE_PASSAGE, "corpus");
  EXPECT_EQ(ctx.latency_sample(2, &role), (std::vector<std::string>{"p0", "p1"}));  // indices 0*3/2, 1*3/2
  EXPECT_EQ(role, ROLE_PASSAGE);
  std::vector<std::string> queries;
  for (int i = 0; i < 10; ++i) queries.push_back("q" + std::to_string(i));
  ctx.encode(queries, ROLE_QUERY, "query");
  EXPECT_EQ(ctx.latency_sample(4, &role), (std::vector<std::string>{"q0", "q2", "q5", "q7"}));  // i * 10 / 4
  EXPECT_EQ(role, ROLE_QUERY);
  EXPECT_EQ(ctx.latency_sample(100, &role).size(), 10u);  // never more than there are
}
