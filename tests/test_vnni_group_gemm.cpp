// The group-wise weight-only kernel on AVX512-VNNI
// (runners/kernels/vnni_group_gemm.h) against a float64 product of the
// dequantised weights W = scale * (code - zero), written from that formula
// (weight_parts.h), not from the kernel. The limbs keep x to 3e-8 of a
// row's largest element and every group's integer sums are exact, so the
// error is fp32 rounding of the per-group combination and of the sum over
// groups: held to 2e-6 of max |y| (a plain fp32 GEMM of these sizes stays
// within ~5e-7).
#include <cmath>
#include <cstdlib>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "runners/kernels/vnni_group_gemm.h"
#include "weight_parts.h"

using namespace embeval;
using namespace embeval::test;

namespace {

constexpr double TOL = 2e-6;

at::Tensor run(const VnniGroupGemm& k, const at::Tensor& x, int64_t out) {
  at::Tensor y = at::full({x.size(0), out}, 123.0f);
  k.run(x.data_ptr<float>(), x.size(0), y.data_ptr<float>());
  return y;
}

at::Tensor reference(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, LinearActivation act) {
  at::Tensor y = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t()) + b.to(at::kDouble);
  if (act == LinearActivation::gelu_erf) y = 0.5 * y * (1 + at::erf(y / std::sqrt(2.0)));
  if (act == LinearActivation::relu) y = y.clamp_min(0);
  return y;
}

}  // namespace

TEST(VnniGroupGemm, MatchesFloat64ForEveryRowCountGroupAndWidth) {
  if (!VnniGroupGemm::available()) GTEST_SKIP() << "no AVX512-VNNI on this CPU";
  at::set_num_threads(2);
  struct Case {
    int bits;
    int64_t out, in, group;
    LinearActivation act;
  };
  // out 40: a last block of 8 outputs; groups of 8 to 768; int8 codes to 255.
  for (Case c : {Case{4, 40, 256, 128, LinearActivation::none}, Case{4, 48, 192, 32, LinearActivation::gelu_erf},
                 Case{4, 16, 64, 8, LinearActivation::relu}, Case{8, 40, 256, 64, LinearActivation::none},
                 Case{8, 33, 1024, 512, LinearActivation::gelu_erf},
                 Case{4, 24, 768, 768, LinearActivation::none}}) {  // per-channel int4: one group a row
    WeightParts p = random_weight_parts(c.out, c.in, c.bits, c.group, false, 7 + c.bits + c.group);
    const at::Tensor scales = p.scales.contiguous(), zeros = p.zeros.to(at::kFloat).contiguous();
    const at::Tensor bias = at::randn({c.out});
    VnniGroupGemm k(p.codes, c.bits, scales, zeros, bias, c.group, c.act);
    const at::Tensor w = reference_weight(p, c.in, c.group);
    // 1-8 rows: the small microkernels and the outputs split over threads;
    // 70: two chunks; 200: rows split over threads.
    for (int64_t rows : {1, 2, 3, 5, 8, 13, 70, 200}) {
      at::Tensor x = at::randn({rows, c.in});
      x.select(1, 3).mul_(20);  // an outlier channel: the limbs are per row
      const at::Tensor want = reference(x, w, bias, c.act);
      const at::Tensor got = run(k, x, c.out);
      EXPECT_LT(rel_err(got, want), TOL) << c.bits << " bits, groups of " << c.group << ", " << rows << " rows";
      // One thread gives the same bits (rows and outputs are split, never sums).
      at::set_num_threads(1);
      EXPECT_TRUE(run(k, x, c.out).equal(got)) << rows << " rows on one thread";
      at::set_num_threads(2);
    }
  }
}

// AWQ's input divisor, divided out as each row's limbs are made: the same
// bits as dividing x first (IEEE quotients either way), on each path of
// run() (outputs split over threads, rows split, one thread), and a
// non-finite quotient (a divisor's underflow) still gives a NaN row.
TEST(VnniGroupGemm, DividesByTheInputDivisorAsDividingFirstDoes) {
  if (!VnniGroupGemm::available()) GTEST_SKIP() << "no AVX512-VNNI on this CPU";
  WeightParts p = random_weight_parts(48, 192, 4, 64, false, 11);
  VnniGroupGemm k(p.codes, 4, p.scales.contiguous(), p.zeros.to(at::kFloat).contiguous(), at::randn({48}), 64,
                  LinearActivation::gelu_erf);
  const at::Tensor divisor = at::rand({192}) * 4 + 0.05;
  for (int threads : {2, 1})
    for (int64_t rows : {1, 5, 13, 70, 200}) {
      at::set_num_threads(threads);
      const at::Tensor x = at::randn({rows, 192});
      at::Tensor got = at::full({rows, 48}, 123.0f);
      k.run(x.data_ptr<float>(), rows, got.data_ptr<float>(), divisor.data_ptr<float>());
      EXPECT_TRUE(got.equal(run(k, x / divisor, 48))) << rows << " rows, " << threads << " thread(s)";
    }
  at::set_num_threads(2);
  at::Tensor tiny = divisor.clone();
  tiny[7] = 1e-45f;  // 1 / 1e-45 overflows to infinity (row 1); 0 / 1e-45 is 0
  at::Tensor x = at::randn({3, 192});
  x.select(1, 7).zero_();
  x[1][7] = 1.0f;
  at::Tensor y = at::empty({3, 48});
  k.run(x.data_ptr<float>(), 3, y.data_ptr<float>(), tiny.data_ptr<float>());
  EXPECT_TRUE(y[1].isnan().all().item<bool>());
  EXPECT_FALSE(y[0].isnan().any().item<bool>());
}

TEST(VnniGroupGemm, GivesTheCodesBackExactly) {
  for (int bits : {4, 8}) {
    WeightParts p = random_weight_parts(37, 96, bits, 32, false, 3);
    VnniGroupGemm k(p.codes, bits, p.scales.contiguous(), p.zeros.to(at::kFloat).contiguous(), at::Tensor(), 32,
                    LinearActivation::none);
    at::Tensor back = at::empty({37, 96}, at::kByte);
    k.unpack_codes(back.data_ptr<uint8_t>(), 0, 37);
    EXPECT_TRUE(back.equal(p.codes)) << bits << " bits";
    at::Tensor part = at::empty({12, 96}, at::kByte);
    k.unpack_codes(part.data_ptr<uint8_t>(), 20, 32);  // rows across two blocks of 16
    EXPECT_TRUE(part.equal(p.codes.narrow(0, 20, 12))) << bits << " bits, rows 20-31";
    EXPECT_EQ(k.packed_bytes(), 48 * 96 * bits / 8);  // three blocks of 16 outputs
  }
}

TEST(VnniGroupGemm, ARowThatIsNotFiniteComesOutNaNAndOnlyThatRow) {
  if (!VnniGroupGemm::available()) GTEST_SKIP() << "no AVX512-VNNI on this CPU";
  WeightParts p = random_weight_parts(32, 64, 4, 32, false, 5);
  VnniGroupGemm k(p.codes, 4, p.scales.contiguous(), p.zeros.to(at::kFloat).contiguous(), at::Tensor(), 32,
                  LinearActivation::none);
  at::Tensor x = at::randn({3, 64});
  x[1][10] = INFINITY;
  const at::Tensor y = run(k, x, 32);
  EXPECT_TRUE(y[1].isnan().all().item<bool>());
  EXPECT_FALSE(y[0].isnan().any().item<bool>());
  EXPECT_FALSE(y[2].isnan().any().item<bool>());
}

TEST(VnniGroupGemm, RefusesWhatItCannotRunExactly) {
  WeightParts p = random_weight_parts(16, 96, 4, 32, false, 9);
  const at::Tensor s = p.scales.contiguous(), z = p.zeros.to(at::kFloat).contiguous();
  EXPECT_FALSE(VnniGroupGemm::fits(4, 96, 12));    // not a multiple of 8
  EXPECT_FALSE(VnniGroupGemm::fits(8, 2048, 1024)); // group sums past 2^24
  EXPECT_FALSE(VnniGroupGemm::fits(4, 9216, 9216)); // 9216 x 15 x 127 > 2^24
  EXPECT_TRUE(VnniGroupGemm::fits(4, 3072, 3072));  // per-channel int4 at bert-base's widest
  EXPECT_TRUE(VnniGroupGemm::fits(4, 96, 32));
  try {
    VnniGroupGemm(p.codes, 4, s, z + 0.5, at::Tensor(), 32, LinearActivation::none);
    FAIL() << "fractional zero points accepted";
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "VnniGroupGemm: zero points must be integers in [0, 15]");
  }
  EXPECT_THROW(VnniGroupGemm(p.codes, 4, s, z, at::Tensor(), 24, LinearActivation::none), std::exception);
  try {
    VnniGroupGemm(p.codes + 16, 4, s, z, at::Tensor(), 32, LinearActivation::none);  // would spill into the next nibble
    FAIL() << "a 5-bit code accepted";
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "VnniGroupGemm: a code does not fit 4 bits");
  }
}
