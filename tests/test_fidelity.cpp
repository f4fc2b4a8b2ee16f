// Fidelity to fp32 (harness/fidelity.h): vectors saved by the fp32 run come
// back bit for bit, cosines are computed row by row, and vectors of other
// texts or a damaged file never yield a number.
#include <cmath>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "harness/error.h"
#include "harness/fidelity.h"
#include "test_util.h"

using namespace embeval;

namespace {

EncodedSet set_of(Role role, const std::vector<std::string>& texts, std::vector<float> values, int64_t cols) {
  EncodedSet s;
  s.role = role;
  s.digest = encoded_set_digest("q: ", texts);
  s.vectors = Matrix(static_cast<int64_t>(values.size()) / cols, cols);
  s.vectors.values = std::move(values);
  return s;
}

}  // namespace

TEST(Fidelity, SavedVectorsRoundTripAndCompareRowByRow) {
  std::vector<EncodedSet> ref = {set_of(ROLE_QUERY, {"a", "b"}, {1, 0, 0, 1}, 2),
                                 set_of(ROLE_PASSAGE, {"c"}, {3, 4}, 2)};
  const auto file = test::scratch_dir("fidelity") / "t.vectors";
  save_encoded_sets(file, ref);
  std::vector<EncodedSet> back = load_encoded_sets(file);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].digest, ref[0].digest);
  EXPECT_EQ(back[1].vectors.values, ref[1].vectors.values);
  EXPECT_EQ(back[0].role, ROLE_QUERY);

  // Variant: row 0 turned by 90 degrees (cos 0), row 1 the same, row 2 scaled (cos 1).
  std::vector<EncodedSet> var = {set_of(ROLE_QUERY, {"a", "b"}, {0, 1, 0, 2}, 2), set_of(ROLE_PASSAGE, {"c"}, {6, 8}, 2)};
  auto f = compare_encoded_sets(back, var);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->vectors, 3);
  EXPECT_NEAR(f->mean_cosine, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(f->min_cosine, 0.0, 1e-12);
}

TEST(Fidelity, OtherTextsOrPromptsGiveNoNumber) {
  std::vector<EncodedSet> ref = {set_of(ROLE_QUERY, {"a", "b"}, {1, 0, 0, 1}, 2)};
  std::vector<EncodedSet> other = {set_of(ROLE_QUERY, {"a", "x"}, {1, 0, 0, 1}, 2)};
  EXPECT_FALSE(compare_encoded_sets(ref, other).has_value());
  std::vector<EncodedSet> role = {set_of(ROLE_PASSAGE, {"a", "b"}, {1, 0, 0, 1}, 2)};
  EXPECT_FALSE(compare_encoded_sets(ref, role).has_value());
  EXPECT_FALSE(compare_encoded_sets(ref, {}).has_value());
  EXPECT_NE(encoded_set_digest("q: ", {"ab"}), encoded_set_digest("q: a", {"b"}));
}

TEST(Fidelity, DamagedFilesAreErrorsNamingThem) {
  const auto dir = test::scratch_dir("fidelity-bad");
  save_encoded_sets(dir / "good.vectors", {set_of(ROLE_QUERY, {"a"}, {1, 2, 3}, 3)});
  std::ifstream in(dir / "good.vectors", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir / "cut.vectors", std::ios::binary) << bytes.substr(0, bytes.size() - 3);
  std::ofstream(dir / "text.vectors", std::ios::binary) << "not vectors";
  for (const char* name : {"cut.vectors", "text.vectors", "missing.vectors"}) {
    try {
      load_encoded_sets(dir / name);
      ADD_FAILURE() << name << " loaded";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}
