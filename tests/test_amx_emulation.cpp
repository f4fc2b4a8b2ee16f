// amx_emulation.h's model of the tile unit, against references computed
// another way: products of tiles loaded from strided, partial shapes equal
// float64 / int64 matrix products of the same numbers (the B operand in
// the SDM's pair / quad-interleaved layout, built here from a plain k x n
// matrix); TDPBF16PS's rounding as the SDM's pseudocode states it (DAZ,
// FTZ, the even and odd elements of the pairs summed apart); int32 sums
// wrap; the configurations and operand shapes the hardware faults on abort
// with the instruction named. In an EMBEVAL_AMX_EMULATE build, also that
// the AMX kernels really run on the model.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <gtest/gtest.h>

#include "runners/kernels/amx_bf16_gemm.h"
#include "runners/kernels/amx_emulation.h"
#include "runners/kernels/amx_s8_gemm.h"
#include "runners/kernels/amx_tiles.h"
#include "runners/kernels/cpu_attention.h"
#if defined(EMBEVAL_AMX_EMULATE) && defined(EMBEVAL_AMX_BUILD)
#include "runners/kernels/avx512_math.h"
#endif

namespace emu = embeval::amx_emulation;

namespace {

// LDTILECFG's 64-byte operand, written from the SDM's layout (byte 0
// palette, byte 1 start_row, bytes 16-47 colsb of tiles 0-15, bytes 48-63
// their rows), not from amx_tiles.h's struct.
struct Config {
  uint8_t bytes[64] = {};
  Config() { bytes[0] = 1; }
  Config& tile(int t, int rows, int colsb) {
    bytes[16 + 2 * t] = static_cast<uint8_t>(colsb & 0xff);
    bytes[17 + 2 * t] = static_cast<uint8_t>(colsb >> 8);
    bytes[48 + t] = static_cast<uint8_t>(rows);
    return *this;
  }
};

uint16_t bf16_bits(float f) { return c10::BFloat16(f).x; }
float bits_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(AmxEmulation, Bf16ProductOfPartialStridedTilesIsTheMatrixProduct) {
  // C (tmm0) is m x n fp32, A (tmm1) m x 2p bf16, B (tmm2) p rows of n bf16
  // pairs: B[q][2c + i] = W[2q + i][c]. Small integers: every product and
  // sum is exact in fp32, so any correct order gives the float64 value.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> v(-9, 9);
  for (const auto& [m, p, n] : std::vector<std::tuple<int, int, int>>{{16, 16, 16}, {7, 5, 3}, {16, 1, 10}, {1, 16, 16}}) {
    const int lda = 40, ldb = 35, ldc = 20;  // elements a row, wider than the tile rows
    std::vector<float> a(static_cast<size_t>(m * 2 * p)), w(static_cast<size_t>(2 * p * n)), c0(static_cast<size_t>(m * n));
    for (auto& x : a) x = static_cast<float>(v(rng));
    for (auto& x : w) x = static_cast<float>(v(rng));
    for (auto& x : c0) x = static_cast<float>(v(rng) * 100);
    std::vector<uint16_t> abuf(static_cast<size_t>(m * lda), bf16_bits(NAN)), bbuf(static_cast<size_t>(p * ldb), bf16_bits(NAN));
    std::vector<float> cbuf(static_cast<size_t>(m * ldc), -1.0f);
    for (int r = 0; r < m; ++r)
      for (int kk = 0; kk < 2 * p; ++kk) abuf[static_cast<size_t>(r * lda + kk)] = bf16_bits(a[static_cast<size_t>(r * 2 * p + kk)]);
    for (int q = 0; q < p; ++q)
      for (int c = 0; c < n; ++c)
        for (int i = 0; i < 2; ++i) bbuf[static_cast<size_t>(q * ldb + 2 * c + i)] = bf16_bits(w[static_cast<size_t>((2 * q + i) * n + c)]);
    for (int r = 0; r < m; ++r)
      for (int c = 0; c < n; ++c) cbuf[static_cast<size_t>(r * ldc + c)] = c0[static_cast<size_t>(r * n + c)];
    emu::ldtilecfg(Config().tile(0, m, 4 * n).tile(1, m, 4 * p).tile(2, p, 4 * n).bytes);
    emu::tileloadd(0, cbuf.data(), ldc * 4);
    emu::tileloadd(1, abuf.data(), lda * 2);
    emu::tileloadd(2, bbuf.data(), ldb * 2);
    emu::tdpbf16ps(0, 1, 2);
    std::vector<float> out(static_cast<size_t>(m * ldc), -7.0f);
    emu::tilestored(0, out.data(), ldc * 4);
    emu::tilerelease();
    for (int r = 0; r < m; ++r) {
      for (int c = 0; c < ldc; ++c) {
        if (c >= n) {  // TILESTORED writes colsb bytes a row, nothing more
          EXPECT_EQ(out[static_cast<size_t>(r * ldc + c)], -7.0f);
          continue;
        }
        double want = c0[static_cast<size_t>(r * n + c)];
        for (int kk = 0; kk < 2 * p; ++kk)
          want += static_cast<double>(a[static_cast<size_t>(r * 2 * p + kk)]) * w[static_cast<size_t>(kk * n + c)];
        EXPECT_EQ(out[static_cast<size_t>(r * ldc + c)], want) << m << "x" << p << "x" << n << " at " << r << "," << c;
      }
    }
  }
}

TEST(AmxEmulation, Bf16RoundingIsTheSdmsPseudocode) {
  // One row, one column: A = pairs (a0, a1) over k, B = pairs (b0, b1).
  const auto product = [](std::vector<float> a, std::vector<float> b, float c) {
    const int p = static_cast<int>(a.size() / 2);
    std::vector<uint16_t> at(a.size()), bt(b.size());
    for (size_t i = 0; i < a.size(); ++i) at[i] = bf16_bits(a[i]);
    for (size_t i = 0; i < b.size(); ++i) bt[i] = bf16_bits(b[i]);
    emu::ldtilecfg(Config().tile(0, 1, 4).tile(1, 1, 4 * p).tile(2, p, 4).bytes);
    emu::tileloadd(0, &c, 4);
    emu::tileloadd(1, at.data(), 4 * p);
    emu::tileloadd(2, bt.data(), 4);
    emu::tdpbf16ps(0, 1, 2);
    float out = 0;
    emu::tilestored(0, &out, 4);
    emu::tilerelease();
    return out;
  };
  // Even and odd elements accumulate apart, then meet: (2^24 + 0) + (1 + 1)
  // is 2^24 + 2, where one running sum would lose each 1 (2^24 + 1 rounds
  // to 2^24, nearest even).
  EXPECT_EQ(product({1, 1, 1, 1}, {16777216.0f, 1, 0, 1}, 0), 16777218.0f);
  // DAZ: a denormal bf16 (0x0001, 9.2e-41) multiplies as zero.
  EXPECT_EQ(product({bits_float(0x00010000u), 0}, {1e30f, 0}, 0), 0.0f);
  // FTZ: a product below 2^-126 is flushed; a denormal accumulator reads as zero.
  EXPECT_EQ(product({1e-20f, 0}, {1e-20f, 0}, 0), 0.0f);
  EXPECT_EQ(product({0, 0}, {0, 0}, bits_float(0x00000005u)), 0.0f);
  // NaN and infinity propagate as in IEEE arithmetic.
  EXPECT_TRUE(std::isnan(product({NAN, 1}, {1, 1}, 0)));
  EXPECT_TRUE(std::isnan(product({INFINITY, 0}, {0, 0}, 0)));  // inf x 0
  EXPECT_EQ(product({INFINITY, 1}, {1, 1}, 0), INFINITY);
}

TEST(AmxEmulation, Int8ProductsAreTheInt64ProductModulo2To32) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> byte(0, 255);
  struct Kind {
    bool a_signed, b_signed;
    const char* name;
  };
  for (const Kind kind : {Kind{true, true, "TDPBSSD"}, Kind{true, false, "TDPBSUD"}, Kind{false, true, "TDPBUSD"},
                          Kind{false, false, "TDPBUUD"}}) {
    const int m = 13, q = 16, n = 11;  // A m x 4q bytes, B q rows of n quads
    std::vector<uint8_t> a(static_cast<size_t>(m * 4 * q)), bt(static_cast<size_t>(q * 4 * n));
    for (auto& x : a) x = static_cast<uint8_t>(byte(rng));
    for (auto& x : bt) x = static_cast<uint8_t>(byte(rng));
    std::vector<int32_t> c(static_cast<size_t>(m * n));
    for (size_t i = 0; i < c.size(); ++i) c[i] = i % 2 ? 2147483000 : -2147483000;  // sums cross the int32 range
    emu::ldtilecfg(Config().tile(3, m, 4 * n).tile(5, m, 4 * q).tile(7, q, 4 * n).bytes);
    emu::tileloadd(3, c.data(), 4 * n);
    emu::tileloadd(5, a.data(), 4 * q);
    emu::tileloadd(7, bt.data(), 4 * n);
    emu::tdpb_d(3, 5, 7, kind.a_signed, kind.b_signed, kind.name);
    std::vector<int32_t> out(c.size());
    emu::tilestored(3, out.data(), 4 * n);
    emu::tilerelease();
    const auto value = [](uint8_t v, bool s) { return s ? static_cast<int64_t>(static_cast<int8_t>(v)) : static_cast<int64_t>(v); };
    for (int r = 0; r < m; ++r)
      for (int col = 0; col < n; ++col) {
        int64_t want = c[static_cast<size_t>(r * n + col)];
        for (int kk = 0; kk < 4 * q; ++kk)  // B's column col, element kk: row kk / 4, byte 4 col + kk % 4
          want += value(a[static_cast<size_t>(r * 4 * q + kk)], kind.a_signed) *
                  value(bt[static_cast<size_t>((kk / 4) * 4 * n + 4 * col + kk % 4)], kind.b_signed);
        EXPECT_EQ(out[static_cast<size_t>(r * n + col)], static_cast<int32_t>(static_cast<uint32_t>(want)))
            << kind.name << " " << r << "," << col;
      }
  }
}

TEST(AmxEmulation, LoadsAndStoresTouchOnlyTheConfiguredShape) {
  // A 3 x 8-byte tile at a stride of 64: the load reads 2 x 64 + 8 bytes (a
  // buffer of exactly that size: a sanitizer build sees any byte more), the
  // store writes rows 0-2, bytes 0-7, and nothing else.
  std::vector<uint8_t> in(2 * 64 + 8), out(16 * 64, 9);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i);
  emu::ldtilecfg(Config().tile(0, 3, 8).bytes);
  emu::tileloadd(0, in.data(), 64);
  emu::tilestored(0, out.data(), 64);
  emu::tilerelease();
  for (int r = 0; r < 16; ++r)
    for (int b = 0; b < 64; ++b)
      EXPECT_EQ(out[static_cast<size_t>(r * 64 + b)], r < 3 && b < 8 ? r * 64 + b : 9) << r << "," << b;
}

using AmxEmulationDeathTest = ::testing::Test;

TEST_F(AmxEmulationDeathTest, FaultsWhereTheHardwareDoes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  float buf[16 * 16] = {};
  EXPECT_DEATH(emu::tilezero(0), "TILEZERO: no tile configuration loaded.*#UD");
  EXPECT_DEATH(emu::ldtilecfg(Config().tile(0, 17, 64).bytes), "LDTILECFG: a tile is larger than 16 rows x 64 bytes.*#GP");
  EXPECT_DEATH(emu::ldtilecfg(Config().tile(0, 16, 0).bytes), "LDTILECFG: a tile has rows but no bytes");
  EXPECT_DEATH(emu::ldtilecfg(Config().tile(8, 1, 4).bytes), "LDTILECFG: a tile past tmm7 has a shape");
  Config bad_palette;
  bad_palette.bytes[0] = 2;
  EXPECT_DEATH(emu::ldtilecfg(bad_palette.bytes), "LDTILECFG: palette is not 0 or 1");
  const auto configured = [&](Config c, auto op) {
    emu::ldtilecfg(c.bytes);
    op();
  };
  EXPECT_DEATH(configured(Config().tile(0, 16, 64), [&] { emu::tileloadd(1, buf, 64); }), "TILELOADD on tmm1: .*no rows");
  // K mismatch: A's 64 bytes a row are 16 pairs, B has 8 rows.
  EXPECT_DEATH(configured(Config().tile(0, 16, 64).tile(1, 16, 64).tile(2, 8, 64), [] { emu::tdpbf16ps(0, 1, 2); }),
               "TDPBF16PS on tmm2: src1.colsb / 4 != src2.rows");
  EXPECT_DEATH(configured(Config().tile(0, 8, 64).tile(1, 16, 64).tile(2, 16, 64), [] { emu::tdpbf16ps(0, 1, 2); }),
               "TDPBF16PS on tmm1: src1.rows != srcdest.rows");
  EXPECT_DEATH(configured(Config().tile(0, 16, 64).tile(1, 16, 64).tile(2, 16, 32), [] { emu::tdpb_d(0, 1, 2, true, true, "TDPBSSD"); }),
               "TDPBSSD on tmm2: src2.colsb != srcdest.colsb");
  EXPECT_DEATH(configured(Config().tile(0, 16, 64).tile(1, 16, 64), [] { emu::tdpbf16ps(0, 1, 1); }),
               "TDPBF16PS: two operands are the same tile register");
}

TEST(AmxEmulation, TheAmxKernelsRunOnTheModelInAnEmulatedBuild) {
#if !defined(EMBEVAL_AMX_EMULATE) || !defined(EMBEVAL_AMX_BUILD)
  GTEST_SKIP() << "not an EMBEVAL_AMX_EMULATE build with the AMX kernels (embeval_amx_model_tests is one)";
#else
  if (!embeval::cpu_has_avx512_bf16()) GTEST_SKIP() << "the kernels' vector code needs AVX512-BF16";
  ASSERT_TRUE(embeval::AmxBf16Gemm::uses_tiles());
  ASSERT_TRUE(embeval::AmxS8Gemm::uses_tiles());
  ASSERT_EQ(embeval::bf16_attention_products(), embeval::Bf16AttentionProducts::amx);
  // A product the kernel runs on tiles: the model counts its instructions.
  at::manual_seed(3);
  const at::Tensor w = at::randint(-3, 4, {40, 64}).to(at::kFloat);
  embeval::AmxBf16Gemm g(w, at::Tensor(), embeval::LinearActivation::none);
  std::vector<uint16_t> x(static_cast<size_t>(5 * 64), bf16_bits(1.0f)), y(static_cast<size_t>(5 * 40));
  const uint64_t before = emu::instructions();
  g.run(x.data(), 5, 64, y.data(), 40, 0, 40);
  EXPECT_GT(emu::instructions(), before);
  const at::Tensor want = w.sum(1);  // x is all ones
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 40; ++c) EXPECT_EQ(y[static_cast<size_t>(r * 40 + c)], bf16_bits(want[c].item<float>()));
#endif
}

}  // namespace
