// Round-to-nearest quantization and the AutoGPTQ / AutoAWQ tensor layouts.
// The expected words are built here by a packer written from the formats'
// documentation (runners/quant/FORMATS.md: AutoGPTQ's QuantLinear.pack and
// AutoAWQ's WQLinear_GEMM.from_linear, read, not run), one value at a time,
// not by the product's pack functions.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/Half.h>
#include <gtest/gtest.h>

#include "harness/error.h"
#include "runners/quant/awq_format.h"
#include "runners/quant/gptq_format.h"
#include "runners/quant/quantized_weight.h"
#include "quant_doc_packers.h"

using namespace embeval;
using namespace embeval::test;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(QuantRtn, SymmetricInt8IsPerChannelAbsmax) {
  at::manual_seed(1);
  at::Tensor w = at::randn({24, 64}, at::kDouble);
  w[3].zero_();  // an all-zero row takes the 1e-5 floor, not a division by zero
  QuantizedWeight q = quantize_rtn(w, 8, 0, true, "layer.weight");
  ASSERT_EQ(q.codes.sizes(), (std::vector<int64_t>{24, 64}));
  ASSERT_EQ(q.scales.sizes(), (std::vector<int64_t>{24, 1}));
  EXPECT_TRUE((q.zeros == 128).all().item<bool>());
  auto wa = w.accessor<double, 2>();
  for (int64_t o = 0; o < 24; ++o) {
    double absmax = 0;
    for (int64_t i = 0; i < 64; ++i) absmax = std::max(absmax, std::abs(wa[o][i]));
    const float s = fp16(std::max(absmax, 1e-5) / 127.0);
    EXPECT_EQ(q.scales[o][0].item<float>(), s) << o;
    for (int64_t i = 0; i < 64; ++i) {
      double expect = std::nearbyint(static_cast<float>(wa[o][i]) / s);
      expect = std::min(127.0, std::max(-127.0, expect));
      ASSERT_EQ(q.codes[o][i].item<int64_t>() - 128, static_cast<int64_t>(expect)) << o << "," << i;
    }
  }
  // Dequantised within half a step of the weight (plus the fp16 rounding of the scale at the extremes).
  at::Tensor err = (q.dequantize().to(at::kDouble) - w).abs() / q.scales.to(at::kDouble);
  EXPECT_LE(err.max().item<double>(), 0.5 + 1e-3);
  EXPECT_EQ(q.packed_bytes(), 24 * 64 + 24 * 2);
}

TEST(QuantRtn, AsymmetricInt4GroupsUseMinAndMax) {
  at::manual_seed(2);
  at::Tensor w = at::randn({16, 128}) + 0.3;
  QuantizedWeight q = quantize_rtn(w, 4, 32, false, "layer.weight");
  ASSERT_EQ(q.scales.sizes(), (std::vector<int64_t>{16, 4}));
  EXPECT_EQ(q.group_size, 32);
  auto wa = w.accessor<float, 2>();
  for (int64_t o = 0; o < 16; ++o)
    for (int64_t g = 0; g < 4; ++g) {
      float mx = -1e30f, mn = 1e30f;
      for (int64_t i = g * 32; i < g * 32 + 32; ++i) mx = std::max(mx, wa[o][i]), mn = std::min(mn, wa[o][i]);
      const float s = fp16(std::max(mx - mn, 1e-5f) / 15.0f);
      const double z = std::min(15.0, std::max(0.0, -static_cast<double>(std::nearbyint(mn / s))));
      EXPECT_EQ(q.scales[o][g].item<float>(), s);
      EXPECT_EQ(q.zeros[o][g].item<int64_t>(), static_cast<int64_t>(z));
      for (int64_t i = g * 32; i < g * 32 + 32; ++i) {
        const double c = std::min(15.0, std::max(0.0, std::nearbyint(wa[o][i] / s) + z));
        ASSERT_EQ(q.codes[o][i].item<int64_t>(), static_cast<int64_t>(c));
      }
    }
  // Ties go to even, as torch.round: 2.5 -> 2, 3.5 -> 4.
  at::Tensor ties = at::tensor({0.0f, 2.5f, 3.5f, 15.0f}).view({1, 4});
  QuantizedWeight t = quantize_rtn(ties, 4, 0, false, "ties");
  EXPECT_EQ(t.scales[0][0].item<float>(), 1.0f);
  EXPECT_EQ(t.codes[0][1].item<int64_t>(), 2);
  EXPECT_EQ(t.codes[0][2].item<int64_t>(), 4);
  // 4 bits at 128 columns: 64 bytes of codes, 4 fp16 scales and 4 packed zeros a row.
  EXPECT_EQ(q.packed_bytes(), 16 * 64 + 16 * 4 * 2 + 16 * 4 / 2);
}

TEST(QuantRtn, BadWeightsAreOneLineErrors) {
  EXPECT_NE(error_of([] { quantize_rtn(at::randn({4, 96}), 4, 64, false, "encoder.layer.0.output.dense.weight"); })
                .find("encoder.layer.0.output.dense.weight: group size 64 does not divide the weight's 96 input columns"),
            std::string::npos);
  at::Tensor w = at::randn({4, 64});
  w[1][2] = NAN;
  EXPECT_NE(error_of([&] { quantize_rtn(w, 8, 0, true, "x.weight"); }).find("x.weight: the weight has NaN"),
            std::string::npos);
}

TEST(GptqFormat, PacksAsDocumentedForEveryWidthAndBothZeroConventions) {
  for (int bits : {2, 3, 4, 8})
    for (GptqFormat f : {GptqFormat::v1, GptqFormat::v2}) {
      const int64_t out = 64, in = 96, group = 32;
      QuantizedWeight q = random_quantized(out, in, bits, group, 10 + bits);
      GptqTensors t = pack_gptq(q, f, "l");
      const bool v1 = f == GptqFormat::v1;
      ASSERT_EQ(t.qweight.sizes(), (std::vector<int64_t>{in * bits / 32, out})) << bits;
      ASSERT_EQ(t.qzeros.sizes(), (std::vector<int64_t>{in / group, out * bits / 32})) << bits;
      EXPECT_EQ(words_of(t.qweight), doc_pack_gptq_qweight(q.codes, bits)) << bits;
      EXPECT_EQ(words_of(t.qzeros), doc_pack_gptq_qzeros(q.zeros, bits, v1)) << bits;
      EXPECT_EQ(t.scales.scalar_type(), at::kHalf);
      EXPECT_TRUE(t.scales.to(at::kFloat).equal(q.scales.t())) << bits;
      EXPECT_TRUE(t.g_idx.equal(at::arange(in, at::kInt).div(group, "floor").to(at::kInt)));

      // Read back from the documentation's words: the same integers and weights.
      GptqTensors doc{tensor_of(doc_pack_gptq_qweight(q.codes, bits), in * bits / 32, out),
                      tensor_of(doc_pack_gptq_qzeros(q.zeros, bits, v1), in / group, out * bits / 32),
                      q.scales.t().contiguous().to(at::kHalf), at::Tensor()};
      QuantizedWeight r = unpack_gptq(doc, bits, group, false, f, "l");
      EXPECT_TRUE(r.codes.equal(q.codes)) << bits;
      EXPECT_TRUE(r.zeros.equal(q.zeros)) << bits;
      EXPECT_TRUE(r.dequantize().equal(q.dequantize())) << bits;
    }
}

TEST(GptqFormat, SymmetricWordsMatchTheKnownConstants) {
  // AutoGPTQ's sym=True zero is 2^(bits-1): v1 stores 7 in every 4-bit field
  // (0x77777777), GPTQModel's v2 stores 8 (0x88888888); at 8 bits 0x7F7F7F7F / 0x80808080.
  for (int bits : {4, 8}) {
    QuantizedWeight q = quantize_rtn(at::randn({32, 64}), bits, 32, true, "l");
    const uint32_t v1 = bits == 4 ? 0x77777777u : 0x7F7F7F7Fu, v2 = bits == 4 ? 0x88888888u : 0x80808080u;
    for (uint32_t w : words_of(pack_gptq(q, GptqFormat::v1, "l").qzeros)) EXPECT_EQ(w, v1);
    for (uint32_t w : words_of(pack_gptq(q, GptqFormat::v2, "l").qzeros)) EXPECT_EQ(w, v2);
    QuantizedWeight r = unpack_gptq(pack_gptq(q, GptqFormat::v1, "l"), bits, 32, true, GptqFormat::v1, "l");
    EXPECT_TRUE(r.dequantize().equal(q.dequantize()));
  }
  // A 3-bit run of 32 values fills three words; value 10 straddles the first two (bits 30-31 and 32).
  at::Tensor v = at::zeros({32, 1}, at::kInt);
  v[10][0] = 7;
  auto w = words_of(pack_bits(v, 3, 0));
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0], 0xC0000000u);
  EXPECT_EQ(w[1], 0x1u);
  EXPECT_EQ(w[2], 0u);
  EXPECT_TRUE(unpack_bits(pack_bits(v, 3, 0), 3, 0, 32).equal(v));
}

TEST(GptqFormat, ActOrderGroupIndexSurvivesAndPlainOnesAreDropped) {
  QuantizedWeight q = random_quantized(32, 64, 4, 16, 7);
  at::Tensor perm = at::randperm(64, at::kLong);
  q.g_idx = perm.div(16, "floor").to(at::kInt);  // each column's group by its act-order position
  GptqTensors t = pack_gptq(q, GptqFormat::v2, "l");
  EXPECT_TRUE(t.g_idx.equal(q.g_idx));
  QuantizedWeight r = unpack_gptq(t, 4, 16, false, GptqFormat::v2, "l");
  ASSERT_TRUE(r.g_idx.defined());
  EXPECT_TRUE(r.dequantize().equal(q.dequantize()));
  // Column i's weight uses the scale and zero of group g_idx[i], not i / 16.
  int64_t i = 0;
  while (q.g_idx[i].item<int64_t>() == i / 16) ++i;
  const int64_t g = q.g_idx[i].item<int64_t>();
  at::Tensor expect = q.scales.select(1, g) * (q.codes.select(1, i).to(at::kFloat) - q.zeros.select(1, g).to(at::kFloat));
  EXPECT_TRUE(r.dequantize().select(1, i).equal(expect));
  q.g_idx = at::Tensor();
  EXPECT_FALSE(unpack_gptq(pack_gptq(q, GptqFormat::v2, "l"), 4, 16, false, GptqFormat::v2, "l").g_idx.defined());
}

TEST(GptqFormat, InconsistentTensorsAreOneLineErrorsNamingTheField) {
  QuantizedWeight q = random_quantized(32, 64, 4, 16, 8);
  GptqTensors t = pack_gptq(q, GptqFormat::v2, "enc.q");
  auto err = [&](GptqTensors x, int bits, int64_t group) {
    return error_of([&] { unpack_gptq(x, bits, group, false, GptqFormat::v2, "enc.q"); });
  };
  EXPECT_NE(err(t, 4, 32).find("enc.q.qzeros: shape [4, 4], expected [2, 4]"), std::string::npos) << err(t, 4, 32);
  EXPECT_NE(err(t, 8, 16).find("enc.q.qzeros"), std::string::npos) << err(t, 8, 16);
  EXPECT_NE(err(t, 5, 16).find("bits 5"), std::string::npos);
  GptqTensors s = t;
  s.scales = s.scales.narrow(1, 0, 16);
  EXPECT_NE(err(s, 4, 16).find("enc.q.scales: shape [4, 16], expected [4, 32]"), std::string::npos) << err(s, 4, 16);
  GptqTensors g = t;
  g.g_idx = g.g_idx.clone();
  g.g_idx[5] = 9;
  EXPECT_NE(err(g, 4, 16).find("enc.q.g_idx: group ids outside [0, 4)"), std::string::npos) << err(g, 4, 16);
  GptqTensors d = t;
  d.qweight = d.qweight.to(at::kFloat);
  EXPECT_NE(err(d, 4, 16).find("enc.q.qweight: Float"), std::string::npos) << err(d, 4, 16);
  d = t;
  d.qzeros = at::Tensor();
  EXPECT_NE(err(d, 4, 16).find("enc.q.qzeros: missing"), std::string::npos);
  // sym in the config but zeros that are not 2^(bits-1).
  EXPECT_NE(error_of([&] { unpack_gptq(t, 4, 16, true, GptqFormat::v2, "enc.q"); })
                .find("enc.q.qzeros: the config says sym"),
            std::string::npos);
  // v1 cannot store a zero of 0.
  q.zeros[3][1] = 0;
  EXPECT_NE(error_of([&] { pack_gptq(q, GptqFormat::v1, "enc.q"); }).find("write gptq_v2"), std::string::npos);
  EXPECT_NO_THROW(pack_gptq(q, GptqFormat::v2, "enc.q"));
}

TEST(AwqFormat, PacksInAutoAwqOrder) {
  // AutoAWQ's documented example: columns 0..7 with values v0..v7 pack as
  // v0 | v2<<4 | v4<<8 | v6<<12 | v1<<16 | v3<<20 | v5<<24 | v7<<28.
  QuantizedWeight q = random_quantized(16, 64, 4, 32, 9);
  AwqTensors t = pack_awq(q, "l");
  ASSERT_EQ(t.qweight.sizes(), (std::vector<int64_t>{64, 2}));
  ASSERT_EQ(t.qzeros.sizes(), (std::vector<int64_t>{2, 2}));
  ASSERT_EQ(t.scales.sizes(), (std::vector<int64_t>{2, 16}));
  auto pack8 = [](auto v) {  // v(k): value of column k of the block
    return uint32_t(v(0)) | uint32_t(v(2)) << 4 | uint32_t(v(4)) << 8 | uint32_t(v(6)) << 12 | uint32_t(v(1)) << 16 |
           uint32_t(v(3)) << 20 | uint32_t(v(5)) << 24 | uint32_t(v(7)) << 28;
  };
  auto qw = words_of(t.qweight), qz = words_of(t.qzeros);
  for (int64_t i = 0; i < 64; ++i)
    for (int64_t c = 0; c < 2; ++c)
      ASSERT_EQ(qw[i * 2 + c], pack8([&](int k) { return q.codes[8 * c + k][i].item<int64_t>(); })) << i << "," << c;
  for (int64_t g = 0; g < 2; ++g)
    for (int64_t c = 0; c < 2; ++c)
      EXPECT_EQ(qz[g * 2 + c], pack8([&](int k) { return q.zeros[8 * c + k][g].item<int64_t>(); }));
  QuantizedWeight r = unpack_awq(t, 32, "l");
  EXPECT_TRUE(r.codes.equal(q.codes));
  EXPECT_TRUE(r.zeros.equal(q.zeros));
  EXPECT_TRUE(r.dequantize().equal(q.dequantize()));
}

TEST(AwqFormat, InconsistentTensorsAreOneLineErrors) {
  QuantizedWeight q = random_quantized(16, 64, 4, 32, 11);
  AwqTensors t = pack_awq(q, "enc.fc1");
  EXPECT_NE(error_of([&] { unpack_awq(t, 16, "enc.fc1"); }).find("enc.fc1.qzeros: shape [2, 2], expected [4, 2]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { unpack_awq(t, 48, "enc.fc1"); }).find("not whole groups of 48"), std::string::npos);
  AwqTensors s = t;
  s.scales = s.scales.to(at::kInt);
  EXPECT_NE(error_of([&] { unpack_awq(s, 32, "enc.fc1"); }).find("enc.fc1.scales: dtype Int"), std::string::npos);
  QuantizedWeight b = q;
  b.bits = 8;
  EXPECT_NE(error_of([&] { pack_awq(b, "enc.fc1"); }).find("4-bit weights, not 8"), std::string::npos);
  QuantizedWeight a = q;
  a.g_idx = at::zeros({64}, at::kInt);
  EXPECT_NE(error_of([&] { pack_awq(a, "enc.fc1"); }).find("no g_idx"), std::string::npos);
}
