// Weight-only int8 / int4 Linear (runners/kernels/weight_only_linear.h)
// against float64 references: the tile dequantisation gives exactly
// scale * (code - zero) per element, and the product with x matches a
// float64 GEMM of those weights, on the CPU's bf16x3 kernel and on the fp32
// tiles alike, and for per-channel int8 on the int8 limbs. bf16x3 keeps 16
// significant bits of each operand and drops lo.lo (~2^-16 relative a
// product); its sums are fp32 like the GEMM's.
#include <cmath>
#include <cstdlib>
#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "runners/kernels/amx_bf16_gemm.h"
#include "runners/kernels/int8_linear.h"
#include "runners/kernels/vnni_group_gemm.h"
#include "runners/kernels/weight_only_linear.h"
#include "weight_parts.h"

using namespace embeval;
using namespace embeval::test;

namespace {

// Runs `body` on the CPU's own bf16 kernel and again on the fp32 tiles
// (EMBEVAL_NO_NATIVE_BF16, read when a layer is first used).
template <class F>
void on_both_paths(F body) {
  for (const char* off : {"0", "1"}) {
    setenv("EMBEVAL_NO_NATIVE_BF16", off, 1);
    body(std::string(off) == "1" ? "fp32 tiles" : "native");
  }
  unsetenv("EMBEVAL_NO_NATIVE_BF16");
}

// max |error| / max |y| that bf16x3 stays within on these sizes (K <= 1024,
// Gaussian x): a product's error is ~2^-16 of |x_i w_i|, and the sum of K of
// them grows like sqrt(K) against |y|'s own sqrt(K).
constexpr double TOL = 2e-5;

}  // namespace

TEST(WeightOnlyLinear, DequantisesExactlyForEveryLayout) {
  struct Case {
    int bits;
    int64_t group;
    bool act_order;
  };
  // in = 96: groups of 32 straddle the two nibble halves (48 columns each).
  for (Case c : {Case{8, 0, false}, Case{8, 32, false}, Case{4, 32, false}, Case{4, 0, false}, Case{4, 16, true},
                 Case{8, 16, true}, Case{4, 16, false}}) {
    const int64_t out = 40, in = 96;
    WeightParts p = random_weight_parts(out, in, c.bits, c.group, c.act_order, 20 + c.bits);
    WeightOnlyLinear layer(p.codes, c.bits, p.scales, p.zeros, c.group, p.g_idx, at::Tensor(), LinearActivation::none);
    EXPECT_TRUE(layer.dequantized_weight().equal(reference_weight(p, in, c.group)))
        << c.bits << " bits, group " << c.group << (c.act_order ? ", act-order" : "");
  }
}

TEST(WeightOnlyLinear, MatchesFloat64ForEveryActivationRowCountAndPartialTile) {
  // Up to 512 rows on a bf16 CPU, bf16x3 a tile of up to 128 output rows a
  // thread (out = 200: one of 128 and a shorter last one of 72); without
  // one, or any count under EMBEVAL_NO_NATIVE_BF16, the fp32 tiles: out = 72
  // is four tiles of 16 and a partial one of 8 at in = 1024 (tile 32 rows at
  // 768: 2 full + 8); bf16x3 from 513 rows (600 here). The tiles' products
  // run over slices of at most 768 inputs: in = 1024 is two of 512, 1664
  // three of 512, 576 and 576; on AMX with no activation or GELU they run
  // as one product of depth 3 in on embeval's kernel (amx_bf16_gemm.h).
  on_both_paths([](const std::string& path) {
  for (int bits : {8, 4})
    for (auto [in, out] : {std::pair<int64_t, int64_t>{768, 72}, {1024, 72}, {768, 200}, {1664, 200}}) {
      const int64_t group = 128;
      WeightParts p = random_weight_parts(out, in, bits, group, false, 30 + bits);
      at::Tensor b = at::randn({out});
      at::Tensor w = reference_weight(p, in, group).to(at::kDouble);
      for (LinearActivation a : {LinearActivation::none, LinearActivation::gelu_erf, LinearActivation::relu}) {
        WeightOnlyLinear layer(p.codes, bits, p.scales, p.zeros, group, at::Tensor(), b, a);
        for (int64_t rows : {1, 7, 16, 17, 64, 203, 600}) {
          at::Tensor x = at::randn({rows, in});
          at::Tensor want = at::mm(x.to(at::kDouble), w.t()) + b.to(at::kDouble);
          if (a == LinearActivation::gelu_erf) want = 0.5 * want * (1 + at::erf(want / std::sqrt(2.0)));
          if (a == LinearActivation::relu) want = want.relu();
          at::Tensor y = layer(x);
          ASSERT_EQ(y.sizes(), (std::vector<int64_t>{rows, out}));
          EXPECT_LT(rel_err(y, want), TOL) << path << ", " << bits << " bits, in " << in << ", act "
                                           << static_cast<int>(a) << ", rows " << rows << ": " << layer.implementation();
        }
      }
    }
  });
}

TEST(WeightOnlyLinear, ActOrderGroupsGiveTheSameProduct) {
  const int64_t out = 48, in = 128;
  WeightParts p = random_weight_parts(out, in, 4, 32, true, 41);
  WeightOnlyLinear layer(p.codes, 4, p.scales, p.zeros, 32, p.g_idx, at::Tensor(), LinearActivation::none);
  for (int64_t rows : {5, 600}) {  // fp32 tiles; bf16x3 on a bf16 CPU
    at::Tensor x = at::randn({rows, in});
    EXPECT_LT(rel_err(layer(x), at::mm(x.to(at::kDouble), reference_weight(p, in, 32).to(at::kDouble).t())), TOL);
  }
  EXPECT_EQ(layer(at::randn({2, 3, in})).sizes(), (std::vector<int64_t>{2, 3, out}));
  EXPECT_EQ(layer(at::randn({0, in})).size(0), 0);
}

TEST(WeightOnlyLinear, InputDivisorDividesEachInputChannel) {
  // AWQ's unfoldable scales: act((x / d) W^T + b) against float64.
  const int64_t out = 40, in = 256;
  WeightParts p = random_weight_parts(out, in, 4, 128, false, 45);
  const at::Tensor d = at::rand({in}) * 4 + 0.25, b = at::randn({out});
  WeightOnlyLinear layer(p.codes, 4, p.scales, p.zeros, 128, at::Tensor(), b, LinearActivation::gelu_erf, d);
  for (int64_t rows : {3, 7, 200}) {  // 9 rows: the small-batch kernel; 21: fp32 tiles; 600: bf16x3 on a bf16 CPU
    const at::Tensor x = at::randn({3, rows, in});
    at::Tensor want =
        at::matmul(x.to(at::kDouble) / d.to(at::kDouble), reference_weight(p, in, 128).to(at::kDouble).t()) +
        b.to(at::kDouble);
    want = 0.5 * want * (1 + at::erf(want / std::sqrt(2.0)));
    EXPECT_LT(rel_err(layer(x), want), TOL) << rows;
  }
  EXPECT_TRUE(layer.input_divisor().equal(d));
  EXPECT_TRUE(layer.dequantized_weight().equal(reference_weight(p, in, 128)));  // the divisor stays out of W
  EXPECT_THROW(WeightOnlyLinear(p.codes, 4, p.scales, p.zeros, 128, at::Tensor(), b, LinearActivation::none,
                                at::ones({in - 1})),
               std::exception);
  EXPECT_THROW(WeightOnlyLinear(p.codes, 4, p.scales, p.zeros, 128, at::Tensor(), b, LinearActivation::none,
                                at::zeros({in})),
               std::exception);
}

TEST(WeightOnlyLinear, Bf16InputsRunTheBf16RoundedWeights) {
  // bf16 in, bf16 out: the product of the bf16 input with the dequantised
  // weights rounded once to bf16 (plus bias, activation), rounded to bf16 at
  // the end: within 2^-8 of the largest output (one rounding) plus fp32 sums;
  // on the int8 limbs, the exact product rounded once.
  struct Case {
    int bits;
    int64_t group;
    bool act_order, divisor;
  };
  for (Case c : {Case{8, 0, false, false}, Case{4, 128, false, false}, Case{4, 32, true, false},
                 Case{4, 128, false, true}})
    for (LinearActivation a : {LinearActivation::none, LinearActivation::gelu_erf}) {
      const int64_t out = 72, in = 256;
      WeightParts p = random_weight_parts(out, in, c.bits, c.group, c.act_order, 60 + c.bits);
      const at::Tensor b = at::randn({out}), d = c.divisor ? at::rand({in}) * 4 + 0.25 : at::Tensor();
      WeightOnlyLinear layer(p.codes, c.bits, p.scales, p.zeros, c.group, p.g_idx, b, a, d);
      const at::Tensor w = reference_weight(p, in, c.group).to(at::kDouble), w16 = w.to(at::kBFloat16).to(at::kDouble);
      // On the int8 limbs (up to 512 rows, "up to ..." in the description)
      // and on the fp32 path (a CPU without a bf16 GEMM) the layer takes
      // the exact product of x / d and W (the fp32 path within its sums),
      // rounded once.
      const bool limbs = layer.bf16_implementation().rfind("up to", 0) == 0 ||
                         layer.bf16_implementation() == "fp32 path, rounded to bf16";
      for (int64_t rows : {1, 7, 203}) {
        const at::Tensor x = at::randn({rows, in}).to(at::kBFloat16);
        const at::Tensor xin = d.defined() ? (x.to(at::kFloat) / d).to(at::kBFloat16) : x;
        at::Tensor want = limbs ? at::mm(d.defined() ? x.to(at::kDouble) / d.to(at::kDouble) : x.to(at::kDouble), w.t())
                                : at::mm(xin.to(at::kDouble), w16.t());
        want += b.to(at::kDouble);
        if (a == LinearActivation::gelu_erf) want = 0.5 * want * (1 + at::erf(want / std::sqrt(2.0)));
        const at::Tensor y = layer(x);
        ASSERT_EQ(y.scalar_type(), at::kBFloat16);
        ASSERT_EQ(y.sizes(), (std::vector<int64_t>{rows, out}));
        EXPECT_LT(rel_err(y, want), std::ldexp(1.0, -8) + 1e-4)
            << c.bits << " bits, group " << c.group << (c.act_order ? " act-order" : "") << (c.divisor ? " divisor" : "")
            << ", act " << static_cast<int>(a) << ", rows " << rows << ": " << layer.bf16_implementation();
      }
      EXPECT_FALSE(layer.bf16_implementation().empty());
    }
  // Leading dimensions are kept; zero rows are fine.
  WeightParts p = random_weight_parts(16, 64, 8, 0, false, 70);
  WeightOnlyLinear layer(p.codes, 8, p.scales, p.zeros, 0, at::Tensor(), at::Tensor(), LinearActivation::none);
  EXPECT_EQ(layer(at::randn({2, 3, 64}).to(at::kBFloat16)).sizes(), (std::vector<int64_t>{2, 3, 16}));
  EXPECT_EQ(layer(at::randn({0, 64}).to(at::kBFloat16)).size(0), 0);
}

TEST(WeightOnlyLinear, PerChannelInt8RunsOnInt8LimbsAsExactlyAsFp32) {
  // int8 codes with one group a row on an exact int8 GEMM: x as three int8
  // limbs (x = step (a1 + a2 / 254 + a3 / 254^2) to 3e-8 of the row's
  // largest element), so the product is fp32-grade against float64 however
  // lopsided the row (outlier channels 40x the rest here), for symmetric
  // codes (zero 128) and any integer zeros, every row count (one block, a
  // thread's own rows, partial blocks) and every activation; an input width
  // with a tail past the 16-lane loop (100). The tiles give the same. On a
  // CPU with VNNI and no AMX tiles a width that cuts into sub-groups of <= 512
  // (768: two of 384) runs on vnni_group_gemm.h's kernel, the other (100) on
  // oneDNN's int8 GEMM: both paths checked here.
  const bool limbs = onednn_int8_gemm_is_exact();
  const bool vnni = VnniGroupGemm::available() && !(AmxBf16Gemm::available() && AmxBf16Gemm::uses_tiles());
  for (bool symmetric : {true, false})
    for (auto [in, out] : {std::pair<int64_t, int64_t>{768, 72}, {100, 40}}) {
      WeightParts p = random_weight_parts(out, in, 8, 0, false, symmetric ? 80 : 81);
      if (symmetric) p.zeros.fill_(128);
      const at::Tensor b = at::randn({out}), w = reference_weight(p, in, 0).to(at::kDouble);
      for (LinearActivation a : {LinearActivation::none, LinearActivation::gelu_erf, LinearActivation::relu}) {
        WeightOnlyLinear layer(p.codes, 8, p.scales, p.zeros, 0, at::Tensor(), b, a);
        setenv("EMBEVAL_NO_INT8_LIMBS", "1", 1);
        WeightOnlyLinear tiles(p.codes, 8, p.scales, p.zeros, 0, at::Tensor(), b, a);
        unsetenv("EMBEVAL_NO_INT8_LIMBS");
        EXPECT_EQ(layer.implementation().find("limbs") != std::string::npos, limbs) << layer.implementation();
        if (vnni && in == 768) {
          EXPECT_NE(layer.implementation().find("groups of 384 (fp32-exact sums) -> avx512_vnni"), std::string::npos)
              << layer.implementation();
        } else if (limbs) {
          EXPECT_NE(layer.implementation().find("-> onednn:"), std::string::npos) << layer.implementation();
        }
        EXPECT_EQ(tiles.implementation().find("limbs"), std::string::npos) << tiles.implementation();
        EXPECT_TRUE(layer.dequantized_weight().equal(tiles.dequantized_weight()));
        for (int64_t rows : {1, 7, 16, 17, 64, 65, 203, 600}) {
          const at::Tensor x = at::randn({rows, in}) * (1 + 39 * (at::arange(in) % 37 == 0).to(at::kFloat));
          at::Tensor want = at::mm(x.to(at::kDouble), w.t()) + b.to(at::kDouble);
          if (a == LinearActivation::gelu_erf) want = 0.5 * want * (1 + at::erf(want / std::sqrt(2.0)));
          if (a == LinearActivation::relu) want = want.relu();
          const at::Tensor y = layer(x);
          ASSERT_EQ(y.sizes(), (std::vector<int64_t>{rows, out}));
          EXPECT_LT(rel_err(y, want), TOL) << (symmetric ? "symmetric" : "zeros") << ", in " << in << ", act "
                                           << static_cast<int>(a) << ", rows " << rows << ": " << layer.implementation();
          EXPECT_LT(rel_err(tiles(x), want), TOL) << rows;
        }
        // bf16 inputs: up to 512 rows the widened input on the limbs, the
        // exact product rounded once (within 2^-8 of each output); beyond,
        // the weights dequantised from the codes read back from the int8
        // GEMM's packed copy: the same bits as the layer that keeps them.
        const at::Tensor x16 = at::randn({9, in}).to(at::kBFloat16);
        at::Tensor want16 = at::mm(x16.to(at::kDouble), w.t()) + b.to(at::kDouble);
        if (a == LinearActivation::gelu_erf) want16 = 0.5 * want16 * (1 + at::erf(want16 / std::sqrt(2.0)));
        if (a == LinearActivation::relu) want16 = want16.relu();
        EXPECT_LT(rel_err(layer(x16), want16), std::ldexp(1.0, -8) + TOL);
        const at::Tensor many16 = at::randn({600, in}).to(at::kBFloat16);
        EXPECT_TRUE(layer(many16).equal(tiles(many16)));
      }
    }
  // A row with NaN or infinity comes out not finite, never a silently finite
  // vector (NaN on the limbs, tiles and bf16x3; where the fp32 tiles run on
  // oneDNN's fp32 GEMM, as on an AVX2-only CPU, an infinity gives the
  // infinities IEEE arithmetic gives); the others are untouched.
  WeightParts p = random_weight_parts(24, 64, 8, 0, false, 82);
  WeightOnlyLinear layer(p.codes, 8, p.scales, p.zeros, 0, at::Tensor(), at::Tensor(), LinearActivation::none);
  for (int64_t rows : {5, 200}) {
    at::Tensor x = at::randn({rows, 64});
    const at::Tensor clean = layer(x);
    x[1][3] = NAN;
    x[rows - 1][0] = INFINITY;
    const at::Tensor y = layer(x);
    EXPECT_TRUE(y[1].isnan().all().item<bool>()) << rows << " rows: " << layer.implementation();
    EXPECT_FALSE(y[rows - 1].isfinite().any().item<bool>()) << rows << " rows: " << y[rows - 1];
    EXPECT_TRUE(y.narrow(0, 2, rows - 3).equal(clean.narrow(0, 2, rows - 3)));
    EXPECT_TRUE(y[0].equal(clean[0]));
  }
  // An all-zero row gives the bias.
  EXPECT_TRUE(layer(at::zeros({3, 64})).equal(at::zeros({3, 24})));
}

TEST(WeightOnlyLinear, GroupWiseCodesTakeTheVnniKernelWhereItRunsAndAgreeWithTheOtherPath) {
  // On a CPU with VNNI but no AMX, group-wise codes (an fp32 input) run on
  // vnni_group_gemm.h's limbs; EMBEVAL_NO_VNNI_GROUP=1 (read when a layer is
  // made) keeps the other paths. Both against the same float64 product.
  const bool vnni = VnniGroupGemm::available() && !(AmxBf16Gemm::available() && AmxBf16Gemm::uses_tiles());
  const int64_t out = 96, in = 384;
  for (int bits : {4, 8}) {
    WeightParts p = random_weight_parts(out, in, bits, 128, false, 80 + bits);
    const at::Tensor b = at::randn({out});
    WeightOnlyLinear on(p.codes, bits, p.scales, p.zeros, 128, at::Tensor(), b, LinearActivation::gelu_erf);
    setenv("EMBEVAL_NO_VNNI_GROUP", "1", 1);
    WeightOnlyLinear off(p.codes, bits, p.scales, p.zeros, 128, at::Tensor(), b, LinearActivation::gelu_erf);
    unsetenv("EMBEVAL_NO_VNNI_GROUP");
    EXPECT_EQ(on.implementation().find("avx512_vnni") != std::string::npos, vnni) << on.implementation();
    EXPECT_EQ(off.implementation().find("avx512_vnni"), std::string::npos) << off.implementation();
    EXPECT_TRUE(on.dequantized_weight().equal(reference_weight(p, in, 128)));  // the codes read back exactly
    EXPECT_LE(on.weight_bytes(), off.weight_bytes());
    for (int64_t rows : {1, 12, 130}) {
      const at::Tensor x = at::randn({rows, in});
      at::Tensor want = at::matmul(x.to(at::kDouble), reference_weight(p, in, 128).to(at::kDouble).t()) + b.to(at::kDouble);
      want = 0.5 * want * (1 + at::erf(want / std::sqrt(2.0)));
      EXPECT_LT(rel_err(on(x), want), TOL) << bits << " bits, " << rows << " rows: " << on.implementation();
      EXPECT_LT(rel_err(off(x), want), TOL) << bits << " bits, " << rows << " rows: " << off.implementation();
    }
  }
}

TEST(WeightOnlyLinear, HoldsAQuarterOrLessOfTheFp32Bytes) {
  // bert-base's 768 x 768 Linear: int8 per channel <= 0.27x, int4 in groups of 128 <= 0.16x of fp32.
  const int64_t n = 768, fp32 = n * n * 4;
  WeightParts p8 = random_weight_parts(n, n, 8, 0, false, 50), p4 = random_weight_parts(n, n, 4, 128, false, 51);
  WeightOnlyLinear l8(p8.codes, 8, p8.scales, p8.zeros, 0, at::Tensor(), at::Tensor(), LinearActivation::none);
  WeightOnlyLinear l4(p4.codes, 4, p4.scales, p4.zeros, 128, at::Tensor(), at::Tensor(), LinearActivation::none);
  EXPECT_LE(double(l8.weight_bytes()) / fp32, 0.27);
  EXPECT_LE(double(l4.weight_bytes()) / fp32, 0.16);
}

TEST(WeightOnlyLinear, BadPartsAreErrors) {
  WeightParts p = random_weight_parts(16, 64, 4, 32, false, 60);
  EXPECT_THROW(WeightOnlyLinear(p.codes, 3, p.scales, p.zeros, 32, at::Tensor(), at::Tensor(), LinearActivation::none),
               std::exception);
  EXPECT_THROW(WeightOnlyLinear(p.codes, 4, p.scales, p.zeros, 16, at::Tensor(), at::Tensor(), LinearActivation::none),
               std::exception);  // 2 groups of scales for 4 groups of 16
  WeightParts odd = random_weight_parts(16, 63, 4, 0, false, 61);
  EXPECT_THROW(WeightOnlyLinear(odd.codes, 4, odd.scales, odd.zeros, 0, at::Tensor(), at::Tensor(), LinearActivation::none),
               std::exception);
  at::Tensor big = p.codes.clone();
  big[0][0] = 16;
  EXPECT_THROW(WeightOnlyLinear(big, 4, p.scales, p.zeros, 32, at::Tensor(), at::Tensor(), LinearActivation::none),
               std::exception);
  WeightOnlyLinear layer(p.codes, 4, p.scales, p.zeros, 32, at::Tensor(), at::Tensor(), LinearActivation::none);
  EXPECT_THROW(layer(at::randn({2, 63})), std::exception);
}
