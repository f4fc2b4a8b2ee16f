// Quantized specs end to end on a small random checkpoint: hf:DIR,METHOD
// loads, quantizes every encoder Linear, encodes close to fp32; the real
// kernels and the fake-quant path give the same vectors; the spec is
// canonical and round-trips; bad requests are one-line errors.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "checkpoint_writer.h"
#include "harness/error.h"
#include "harness/fidelity.h"
#include "runners/bert/bert_encoder.h"
#include "runners/encoder_factory.h"
#include "test_util.h"

using namespace embeval;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> TEXTS = {"银行卡怎么挂失", "a", "今天天气很好，适合出去玩吗？我们一起去公园散步吧",
                                        "abc def", "怎么申请信用卡额度提升", "x y z w v u t s r q p o n m l"};

fs::path checkpoint() {
  static fs::path dir = [] {
    test::TinyCheckpoint c;
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_heads = 4;
    c.num_layers = 2;
    c.vocab_size = 200;
    fs::path d = test::scratch_dir("quant/tiny");
    test::write_checkpoint(d, c);
    return d;
  }();
  return dir;
}

Matrix encode(const std::string& spec) {
  auto e = make_encoder(spec);
  return e->encode(TEXTS, EncodeOptions{});
}

// Mean and minimum cosine between the rows of two embedding matrices.
std::pair<double, double> cosines(const Matrix& a, const Matrix& b) {
  const Fidelity f = compare_rows(a, b);
  return {f.mean_cosine, f.min_cosine};
}

std::string error_of(const std::string& spec) {
  try {
    make_encoder(spec);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(QuantizeModel, EveryRoundToNearestMethodStaysCloseToFp32) {
  const std::string base = "hf:" + checkpoint().string();
  const Matrix fp32 = encode(base);
  struct Case {
    const char* method;
    double min_cos;  // a random model, no outliers: int8 keeps ~3 digits, int4 ~1.5
  };
  for (Case c : {Case{"wo-int8", 0.9995}, Case{"wo-int8-g32", 0.9995}, Case{"wo-int4-g32", 0.98}, Case{"wo-int4", 0.97},
                 Case{"w8a8", 0.999}}) {
    auto enc = make_encoder(base + "," + c.method);
    const Matrix q = enc->encode(TEXTS, EncodeOptions{});
    auto [mean, lo] = cosines(fp32, q);
    EXPECT_GE(lo, c.min_cos) << c.method << " mean " << mean;
    EXPECT_LT(lo, 1.0 - 1e-9) << c.method << ": the vectors did not change at all";
    // The quantization is in the record.
    EXPECT_EQ(enc->info().quantization, c.method);
    EXPECT_NE(enc->info().fingerprint, make_encoder(base)->info().fingerprint);
    auto* bert = dynamic_cast<BertEncoder*>(enc.get());
    ASSERT_NE(bert, nullptr);
    EXPECT_NE(bert->quantization_description().find("8 Linear layers"), std::string::npos)
        << bert->quantization_description();
  }
}

TEST(QuantizeModel, Bf16VariantsRunTheSameMethodInBf16) {
  // hf:DIR,bf16,METHOD: the method's kernels take and give bf16 and the rest
  // of the model runs in bf16; the vectors stay within bf16 rounding of the
  // fp32 model with the same method, and the record says bf16.
  const std::string dir = fs::weakly_canonical(checkpoint()).string();
  const std::string base = "hf:" + dir;
  for (const char* method : {"wo-int8", "wo-int4-g32", "w8a8"}) {
    const Matrix fp32 = encode(base + "," + method);
    auto enc = make_encoder(base + ",bf16," + method);
    const Matrix bf16 = enc->encode(TEXTS, EncodeOptions{});
    auto [mean, lo] = cosines(fp32, bf16);
    EXPECT_GE(lo, 0.999) << method << " mean " << mean;
    EXPECT_LT(lo, 1.0 - 1e-9) << method << ": bf16 changed nothing";
    EXPECT_EQ(enc->info().dtype, "bf16");
    EXPECT_EQ(enc->info().quantization, method);
    EXPECT_EQ(enc->info().spec, base + ",bf16," + method);
    // As for unquantized models, the fingerprint covers weights and method, the dtype is recorded beside it.
    EXPECT_EQ(enc->info().fingerprint, make_encoder(base + "," + method)->info().fingerprint);
    auto* bert = dynamic_cast<BertEncoder*>(enc.get());
    ASSERT_NE(bert, nullptr);
    EXPECT_NE(bert->quantization_description().find("bf16"), std::string::npos) << bert->quantization_description();
  }
}

TEST(QuantizeModel, RealKernelsAndFakeQuantGiveTheSameVectors) {
  const std::string base = "hf:" + checkpoint().string();
  for (const char* method : {"wo-int8", "wo-int4-g32", "w8a8"}) {
    const Matrix real = encode(base + "," + method);
    const Matrix fake = encode(base + "," + method + ",fakequant");
    // Same weight integers on both paths; only the order of float operations
    // differs. With int8 activations an ulp upstream can move a code by one
    // step after the first layer, so w8a8's bar is 1e-4 rather than 1e-6.
    EXPECT_GE(cosines(real, fake).second, std::string(method) == "w8a8" ? 0.9999 : 0.999999) << method;
  }
  auto fake = make_encoder(base + ",wo-int8,fakequant");
  EXPECT_EQ(fake->info().quantization, "wo-int8 (fake-quant)");
  EXPECT_NE(fake->info().fingerprint, make_encoder(base + ",wo-int8")->info().fingerprint);
}

TEST(QuantizeModel, SpecsAreCanonicalAndRoundTrip) {
  const std::string dir = fs::weakly_canonical(checkpoint()).string();
  auto e = make_encoder("hf:" + dir + ",wo-int4-g32");
  EXPECT_EQ(e->info().spec, "hf:" + dir + ",fp32,wo-int4-g32");
  auto again = make_encoder(e->info().spec);
  EXPECT_EQ(again->info().spec, e->info().spec);
  EXPECT_EQ(again->info().fingerprint, e->info().fingerprint);
  EXPECT_EQ(make_encoder("hf:" + dir + ",w8a8,fakequant")->info().spec, "hf:" + dir + ",fp32,w8a8,fakequant");
  // The flag form gives the same model as the token form.
  RunnerOptions flags;
  flags.quant = "wo-int4-g32";
  EXPECT_EQ(make_encoder("hf:" + dir, flags)->info().spec, e->info().spec);
}

TEST(QuantizeModel, BadRequestsAreOneLineErrors) {
  const std::string base = "hf:" + checkpoint().string();
  // hidden 96: groups of 64 do not divide it (a group at least as wide as the row is one group a row).
  test::TinyCheckpoint c96;
  c96.hidden_size = 96;
  c96.intermediate_size = 192;
  const fs::path d96 = test::scratch_dir("quant/hidden96");
  test::write_checkpoint(d96, c96);
  const std::string e96 = error_of("hf:" + d96.string() + ",wo-int4-g64");
  EXPECT_NE(e96.find("encoder.layer.0.attention.self.{query,key,value}.weight: group size 64 does not divide the "
                     "weight's 96 input columns"),
            std::string::npos)
      << e96;
  EXPECT_NO_THROW(make_encoder("hf:" + d96.string() + ",wo-int4-g32"));
  EXPECT_NE(error_of(base + ",bf16,wo-int8,fakequant").find("fakequant runs the dequantised weights through the fp32"),
            std::string::npos)
      << error_of(base + ",bf16,wo-int8,fakequant");
  EXPECT_NE(error_of(base + ",awq-int4-g32").find("awq-int4-g32: AWQ needs calibration texts"), std::string::npos)
      << error_of(base + ",awq-int4-g32");
  EXPECT_NE(error_of(base + ",fakequant").find("fakequant needs a quantization method"), std::string::npos);
  EXPECT_NE(error_of(base + ",wo-int8,w8a8").find("quantization w8a8 contradicts quantization wo-int8"),
            std::string::npos)
      << error_of(base + ",wo-int8,w8a8");
  EXPECT_NE(error_of(base + ",wo-int3").find("wo takes int8 or int4 weights"), std::string::npos)
      << error_of(base + ",wo-int3");
  EXPECT_NE(error_of(base + ",awq-int4-g12").find("did you mean awq-int4-g128?"), std::string::npos);
  for (const char* bad : {",bf16,wo-int8,fakequant", ",awq-int4-g32", ",fakequant", ",wo-int3"})
    EXPECT_EQ(error_of(base + bad).find('\n'), std::string::npos) << bad;
}
