// The calibrated methods on a small random BERT. SmoothQuant (sq-w8a8-aX):
// smoothing alone, before any rounding, leaves the model's outputs
// unchanged; with outlier channels planted in the activations (the embedding
// LayerNorm's gain on two channels), SmoothQuant's W8A8 stays closer to fp32
// than plain W8A8, the effect the paper (arXiv 2211.10438) reports. GPTQ
// (gptq-int4-gN), quantizing layer by layer, stays closer to fp32 than
// round-to-nearest int4 (arXiv 2210.17323). Fake-quant paths agree with the
// kernels; calibration is required.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "checkpoint_writer.h"
#include "harness/error.h"
#include "runners/bert/bert_model.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/kernels/packed_linear.h"
#include "runners/quant/calibration.h"
#include "runners/quant/quant_spec.h"
#include "runners/quant/quantize_model.h"
#include "runners/torch_runtime.h"
#include "outlier_model.h"
#include "test_util.h"

using namespace embeval;
using namespace embeval::test;
namespace fs = std::filesystem;


TEST(SmoothQuant, SmoothingAloneLeavesTheModelUnchanged) {
  const OutlierModel l = load_outlier_model(true, "sq/tiny");
  const auto ref = model_of(l);
  auto smoothed = model_of(l);
  const ActivationAbsMax stats = collect_activation_absmax(*smoothed, calibration_batches(1, 2));
  EXPECT_EQ(stats.tokens, 2 * (8 * 24 - 14));
  for (double alpha : {0.5, 0.8}) {
    for (int64_t i = 0; i < l.config.num_hidden_layers; ++i)
      for (LinearSlot slot : LINEAR_SLOTS) {
        LinearParams p = smoothed->linear_params(l.weights, i, slot);
        const at::Tensor s = smoothquant_factors(stats.of(i, slot), p.weight, alpha);
        ASSERT_GT(s.max().item<float>() / s.min().item<float>(), 2.0f);  // the factors do something
        smoothed->set_linear(i, slot, std::make_unique<DividedFp32>(p.weight * s.unsqueeze(0), p.bias, p.activation, s));
      }
    const CalibrationBatch test = calibration_batches(2, 1)[0];
    const at::Tensor a = encode(*ref, test), b = encode(*smoothed, test);
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-4) << alpha;
    EXPECT_GT(min_cosine(a, b), 1 - 1e-9) << alpha;
  }
}

TEST(SmoothQuant, StatisticsSkipPaddingAndMatchAPlainMax) {
  const OutlierModel l = load_outlier_model(false, "sq/tiny");
  const auto m = model_of(l);
  std::vector<CalibrationBatch> cal = calibration_batches(3, 1);
  // Padding positions filled with a token whose embedding is made huge: if they
  // were counted, the layer-0 Q/K/V maxima would show it.
  const ActivationAbsMax stats = collect_activation_absmax(*m, cal);
  at::Tensor x = m->embed(cal[0].input_ids);  // layer 0's Q/K/V input
  at::Tensor valid = cal[0].attention_mask.reshape({-1}).nonzero().squeeze(1);
  at::Tensor expect = x.reshape({-1, 64}).index_select(0, valid).abs().amax(0);
  EXPECT_TRUE(stats.of(0, LinearSlot::qkv).equal(expect));
  EXPECT_FALSE(stats.of(0, LinearSlot::qkv).equal(x.reshape({-1, 64}).abs().amax(0)))
      << "padding rows changed nothing: the test does not see them";
}

TEST(SmoothQuant, BeatsPlainW8A8WithOutlierChannels) {
  const OutlierModel l = load_outlier_model(true, "sq/tiny");
  const auto ref = model_of(l);
  const std::vector<CalibrationBatch> cal = calibration_batches(4, 4);
  const CalibrationBatch test = calibration_batches(5, 1)[0];
  const at::Tensor want = encode(*ref, test);
  auto plain = model_of(l);
  quantize_model(*plain, l.weights, parse_quant_spec("w8a8"), false);
  auto sq = model_of(l);
  QuantizeReport r = quantize_model(*sq, l.weights, parse_quant_spec("sq-w8a8-a0.5"), false, cal);
  EXPECT_NE(r.description.find("calibrated on"), std::string::npos) << r.description;
  const double err_plain = (encode(*plain, test) - want).pow(2).mean().item<double>();
  const double err_sq = (encode(*sq, test) - want).pow(2).mean().item<double>();
  EXPECT_LT(err_sq, 0.7 * err_plain) << "plain " << err_plain << ", smoothquant " << err_sq;
  // Fake-quant against the kernel: the same integers at the first layer;
  // after it, float rounding that differs by an ulp can move an activation
  // across a rounding boundary and its code by one step (seen with libtorch
  // 2.6: min cosine 0.99997), so the bar is 1e-4, not exact equality.
  auto fake = model_of(l);
  quantize_model(*fake, l.weights, parse_quant_spec("sq-w8a8-a0.5"), true, cal);
  EXPECT_GT(min_cosine(encode(*fake, test), encode(*sq, test)), 0.9999);
}

TEST(SmoothQuant, NeedsCalibrationTexts) {
  const OutlierModel l = load_outlier_model(false, "sq/tiny");
  auto m = model_of(l);
  try {
    quantize_model(*m, l.weights, parse_quant_spec("sq-w8a8-a0.5"), false);
    ADD_FAILURE() << "quantized without calibration";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("sq-w8a8-a0.5: SmoothQuant needs calibration texts"), std::string::npos)
        << e.what();
  }
}

TEST(GptqModel, BeatsRoundToNearestInt4LayerByLayer) {
  const OutlierModel l = load_outlier_model(true, "sq/tiny");
  const auto ref = model_of(l);
  const std::vector<CalibrationBatch> cal = calibration_batches(8, 8);
  const CalibrationBatch test = calibration_batches(9, 1)[0];
  const at::Tensor want = encode(*ref, test);
  auto rtn = model_of(l);
  quantize_model(*rtn, l.weights, parse_quant_spec("wo-int4-g32"), false);
  const double err_rtn = (encode(*rtn, test) - want).pow(2).mean().item<double>();
  for (const char* method : {"gptq-int4-g32", "gptq-int4-g32-actorder"}) {
    auto g = model_of(l);
    QuantizeReport r = quantize_model(*g, l.weights, parse_quant_spec(method), false, cal);
    EXPECT_NE(r.description.find("calibrated on"), std::string::npos) << r.description;
    const double err = (encode(*g, test) - want).pow(2).mean().item<double>();
    EXPECT_LT(err, 0.8 * err_rtn) << method << ": " << err << " vs round-to-nearest " << err_rtn;
    auto fake = model_of(l);
    quantize_model(*fake, l.weights, parse_quant_spec(method), true, cal);
    EXPECT_GT(min_cosine(encode(*fake, test), encode(*g, test)), 0.99999) << method;
  }
  auto m = model_of(l);
  EXPECT_THROW(quantize_model(*m, l.weights, parse_quant_spec("gptq-int4-g32"), false), UserError);
}

// Every method on a GPU (the ATen kernels of runners/kernels/aten_quant_linear.h,
// calibration's forward passes on the device) against the same method on the
// CPU's kernels: the same method on statistics that differ by float rounding,
// so the vectors agree to within the rounding of the dtype. Runs where
// libtorch sees a GPU (scripts/device/gpu_session.sh), skipped elsewhere.
TEST(QuantizeModelCuda, EveryMethodInEveryDtypeMatchesTheCpuKernels) {
  if (accelerator_description() == "none") GTEST_SKIP() << "no CUDA device";
  const OutlierModel l = load_outlier_model(true, "quant_cuda/tiny");
  const std::vector<CalibrationBatch> cal = calibration_batches(4, 4);
  const CalibrationBatch test = calibration_batches(5, 1)[0];
  const c10::Device cuda(c10::kCUDA);
  std::vector<CalibrationBatch> cal_cuda;
  for (const CalibrationBatch& b : cal) cal_cuda.push_back({b.input_ids.to(cuda), b.attention_mask.to(cuda)});
  const CalibrationBatch test_cuda{test.input_ids.to(cuda), test.attention_mask.to(cuda)};
  for (const char* method : {"wo-int8", "wo-int4-g32", "w8a8", "sq-w8a8-a0.5", "gptq-int4-g32", "gptq-int4-g16-actorder",
                             "awq-int4-g32"}) {
    auto cpu = model_of(l);
    quantize_model(*cpu, l.weights, parse_quant_spec(method), false, cal);
    const at::Tensor want = encode(*cpu, test);
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
      BertModel m(l.config, l.weights, dtype, cuda, "test");
      const QuantizeReport r = quantize_model(m, l.weights, parse_quant_spec(method), false, cal_cuda);
      EXPECT_NE(r.description.find("aten"), std::string::npos) << r.description;
      const double cos = min_cosine(encode(m, test_cuda).to(at::kCPU, at::kFloat), want);
      EXPECT_GT(cos, dtype == at::kFloat ? 0.9999 : 0.99) << method << " in " << c10::toString(dtype) << ": "
                                                          << r.description;
    }
  }
}
