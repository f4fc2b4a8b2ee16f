// Quantization method names: every form parses to the configuration its
// name says, the canonical name parses back to the same spec, and a bad
// name is one line with a did-you-mean.
#include <string>

#include <gtest/gtest.h>

#include "harness/error.h"
#include "runners/quant/quant_spec.h"

using namespace embeval;

namespace {

std::string error_of(const std::string& text) {
  try {
    parse_quant_spec(text);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(QuantSpec, EachFormSaysItsConfiguration) {
  QuantSpec q = parse_quant_spec("wo-int8");
  EXPECT_EQ(q.method, QuantMethod::rtn);
  EXPECT_EQ(q.weight_bits, 8);
  EXPECT_EQ(q.group_size, 0);
  EXPECT_TRUE(q.symmetric);
  EXPECT_TRUE(q.weight_only());

  q = parse_quant_spec("wo-int4-g128");
  EXPECT_EQ(q.method, QuantMethod::rtn);
  EXPECT_EQ(q.weight_bits, 4);
  EXPECT_EQ(q.group_size, 128);
  EXPECT_FALSE(q.symmetric);

  q = parse_quant_spec("awq-int4-g64");
  EXPECT_EQ(q.method, QuantMethod::awq);
  EXPECT_EQ(q.weight_bits, 4);
  EXPECT_EQ(q.group_size, 64);
  EXPECT_FALSE(q.symmetric);

  q = parse_quant_spec("gptq-int4-g128-actorder");
  EXPECT_EQ(q.method, QuantMethod::gptq);
  EXPECT_EQ(q.group_size, 128);
  EXPECT_TRUE(q.act_order);
  EXPECT_FALSE(parse_quant_spec("gptq-int8-g32").act_order);
  EXPECT_EQ(parse_quant_spec("gptq-int8-g32").weight_bits, 8);

  q = parse_quant_spec("w8a8");
  EXPECT_EQ(q.method, QuantMethod::rtn);
  EXPECT_EQ(q.act_bits, 8);
  EXPECT_FALSE(q.weight_only());

  q = parse_quant_spec("sq-w8a8-a0.5");
  EXPECT_EQ(q.method, QuantMethod::smoothquant);
  EXPECT_EQ(q.act_bits, 8);
  EXPECT_EQ(q.alpha, 0.5);
  EXPECT_EQ(parse_quant_spec("sq-w8a8-a0.85").alpha, 0.85);
  EXPECT_EQ(parse_quant_spec("sq-w8a8-a1").alpha, 1.0);
}

TEST(QuantSpec, CanonicalNamesRoundTrip) {
  for (const char* name : {"wo-int8", "wo-int8-g128", "wo-int4", "wo-int4-g128", "wo-int4-g8", "wo-int4-g4096",
                           "awq-int4", "awq-int4-g128", "gptq-int4-g128", "gptq-int4-g128-actorder", "gptq-int8",
                           "gptq-int4-actorder", "w8a8", "sq-w8a8-a0.5", "sq-w8a8-a0.85", "sq-w8a8-a0", "sq-w8a8-a1"}) {
    QuantSpec q = parse_quant_spec(name);
    EXPECT_EQ(q.name(), name);
    EXPECT_TRUE(parse_quant_spec(q.name()) == q) << name;
  }
  // Other spellings of the same alpha come back in one canonical form.
  EXPECT_EQ(parse_quant_spec("sq-w8a8-a.5").name(), "sq-w8a8-a0.5");
  EXPECT_EQ(parse_quant_spec("sq-w8a8-a0.50").name(), "sq-w8a8-a0.5");
  EXPECT_FALSE(parse_quant_spec("gptq-int4-g128") == parse_quant_spec("gptq-int4-g128-actorder"));
}

TEST(QuantSpec, BadNamesAreOneLineWithASuggestion) {
  EXPECT_NE(error_of("awq-int4-g12").find("group size 12 is not a power of two"), std::string::npos)
      << error_of("awq-int4-g12");
  EXPECT_NE(error_of("awq-int4-g12").find("did you mean awq-int4-g128?"), std::string::npos);
  EXPECT_NE(error_of("gtpq-int4-g128").find("did you mean gptq-int4-g128?"), std::string::npos)
      << error_of("gtpq-int4-g128");
  EXPECT_NE(error_of("awq-int8-g128").find("awq (AutoAWQ's GEMM format) takes int4 weights"), std::string::npos)
      << error_of("awq-int8-g128");
  EXPECT_NE(error_of("wo-int3").find("wo takes int8 or int4 weights"), std::string::npos) << error_of("wo-int3");
  EXPECT_NE(error_of("sq-w8a8-a1.5").find("alpha 1.5 is outside [0, 1]"), std::string::npos);
  EXPECT_NE(error_of("sq-w8a8-a-1").find("alpha is a followed by a decimal in [0, 1], not \"a\""), std::string::npos);
  EXPECT_NE(error_of("sq-w8a8").find("SmoothQuant is sq-w8a8-aX"), std::string::npos) << error_of("sq-w8a8");
  EXPECT_NE(error_of("sq-w8a8-a1e-1").find("alpha is a followed by a decimal in [0, 1], not \"a1e\""), std::string::npos)
      << error_of("sq-w8a8-a1e-1");
  EXPECT_NE(error_of("sq-w8a8-ax").find("alpha is a followed by a decimal"), std::string::npos);
  EXPECT_NE(error_of("wo-int4-g0128").find("a group size is g followed by a number"), std::string::npos);
  EXPECT_NE(error_of("wo-int4-g128-actorder").find("\"actorder\" is not expected after \"wo-int4-g128\""),
            std::string::npos)
      << error_of("wo-int4-g128-actorder");
  EXPECT_NE(error_of("gptq-int4-actorder-g128").find("not expected after"), std::string::npos);
  EXPECT_NE(error_of("int8").find("unknown quantization method \"int8\""), std::string::npos);
  EXPECT_NE(error_of("").find("known forms:"), std::string::npos);
  for (const char* bad : {"awq-int4-g12", "wo-int3", "", "sq-w8a8-a1.5"})
    EXPECT_EQ(error_of(bad).find('\n'), std::string::npos) << bad;
}

TEST(QuantSpec, ListsMixDtypesAndMethodsOnce) {
  auto v = parse_quant_list("fp32,bf16,wo-int8,wo-int4-g128,awq-int4-g128,gptq-int4-g128,sq-w8a8-a0.5");
  ASSERT_EQ(v.size(), 7u);
  EXPECT_EQ(v[0].dtype, "fp32");
  EXPECT_FALSE(v[0].quant.has_value());
  EXPECT_EQ(v[1].name(), "bf16");
  EXPECT_EQ(v[4].name(), "awq-int4-g128");
  EXPECT_EQ(v[6].quant->alpha, 0.5);
  EXPECT_THROW(parse_quant_list("fp32,,wo-int8"), UserError);
  EXPECT_THROW(parse_quant_list("wo-int8,fp32,wo-int8"), UserError);
  EXPECT_THROW(parse_quant_list("sq-w8a8-a0.5,sq-w8a8-a.5"), UserError);  // the same method twice
  EXPECT_THROW(parse_quant_list("fp32,int4"), UserError);
  // bf16+METHOD: both set; fp32+METHOD is the method itself; another dtype or method is an error.
  auto b = parse_quant_list("wo-int8,bf16+wo-int8,bf16+sq-w8a8-a0.5");
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[1].dtype, "bf16");
  EXPECT_EQ(b[1].quant->name(), "wo-int8");
  EXPECT_EQ(b[1].name(), "bf16+wo-int8");
  EXPECT_EQ(b[2].name(), "bf16+sq-w8a8-a0.5");
  EXPECT_EQ(parse_quant_list("fp32+wo-int8")[0].name(), "wo-int8");
  EXPECT_THROW(parse_quant_list("wo-int8,fp32+wo-int8"), UserError);  // the same variant twice
  EXPECT_EQ(parse_quant_list("fp16+gptq-int4-g128")[0].name(), "fp16+gptq-int4-g128");  // CUDA's; the CPU refuses fp16
  EXPECT_THROW(parse_quant_list("fp64+wo-int8"), UserError);
  EXPECT_THROW(parse_quant_list("int8+wo-int8"), UserError);
  EXPECT_THROW(parse_quant_list("bf16+int4"), UserError);
  EXPECT_THROW(parse_quant_list("bf16+"), UserError);
  EXPECT_TRUE(is_quant_token("awq-int4-g128"));
  EXPECT_TRUE(is_quant_token("w8a8"));
  EXPECT_FALSE(is_quant_token("bf16"));
  EXPECT_FALSE(is_quant_token("maxlen=8"));
}
