// AWQ (runners/quant/awq.h) against tests/data/awq/reference.bin, which
// scripts/make_awq_reference.py computed with a transcription of
// mit-han-lab/llm-awq's own search code (not embeval's): on one Linear with
// outlier input channels, the scale search picks the same exponent and the
// same scales, and the clip search the same per-group maximum except where
// two shrinks tie to float rounding (checked against the reference's own
// error table). Then, on a small random BERT: applying AWQ's scales before
// any rounding leaves the model unchanged (the folds into V and the input
// divisors are exact), and AWQ int4 stays closer to fp32 than round-to-
// nearest int4 with outlier channels, the paper's effect; the fake-quant
// path agrees with the kernel.
#include <cmath>
#include <cstdio>
#include <limits>
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
#include "runners/quant/awq.h"
#include "runners/quant/quant_spec.h"
#include "runners/quant/quantize_model.h"
#include "outlier_model.h"
#include "test_util.h"

using namespace embeval;
using namespace embeval::test;
namespace fs = std::filesystem;

namespace {

StateDict reference() {
  StateDict sd;
  load_weight_file(test::data_path("awq/reference.bin"), &sd);
  return sd;
}

AwqOptions options() {
  AwqOptions o;
  o.bits = 4;
  o.group_size = 32;
  return o;
}

}  // namespace

TEST(Awq, ScaleSearchMatchesTheReferenceCode) {
  const StateDict ref = reference();
  const at::Tensor& x = ref.tensors.at("x");
  const at::Tensor& w = ref.tensors.at("weight");
  const at::Tensor& b = ref.tensors.at("bias");
  const at::Tensor mean = x.abs().mean(0);
  double ratio = -1;
  const at::Tensor s = awq_search_scale(
      mean, {w}, [&](const std::vector<at::Tensor>& ws) { return at::linear(x, ws[0], b); }, options(), "fc.weight",
      &ratio);
  const double want_ratio = ref.tensors.at("ratio").item<double>();
  EXPECT_EQ(std::lround(ratio * 20), std::lround(want_ratio * 20)) << ratio << " vs " << want_ratio;
  EXPECT_GT(want_ratio, 0) << "the fixture should need a scale (plain RTN is ratio 0)";
  EXPECT_LT((s - ref.tensors.at("scales")).abs().max().item<float>(), 1e-6f * ref.tensors.at("scales").abs().max().item<float>());
  // The reference's losses: the exponent chosen is their first minimum, and
  // not a near tie (so float summation order cannot flip it).
  const at::Tensor losses = ref.tensors.at("losses").to(at::kDouble);
  const int best = static_cast<int>(losses.argmin().item<int64_t>());
  EXPECT_EQ(best, static_cast<int>(std::lround(want_ratio * 20)));
  at::Tensor others = losses.clone();
  others[best] = std::numeric_limits<double>::infinity();
  EXPECT_GT(others.min().item<double>(), losses[best].item<double>() * (1 + 1e-4));
}

TEST(Awq, ClipSearchMatchesTheReferenceCodeUpToTies) {
  const StateDict ref = reference();
  const at::Tensor s = ref.tensors.at("scales");
  const at::Tensor scaled = ref.tensors.at("weight") * s.unsqueeze(0);
  const at::Tensor clipped = awq_clip(scaled, ref.tensors.at("x") / s, options(), "fc.weight");
  const at::Tensor want = ref.tensors.at("clipped_weight");
  ASSERT_EQ(clipped.sizes(), want.sizes());
  // Per (output channel, group): the shrink step each side chose.
  const int64_t out = scaled.size(0), groups = scaled.size(1) / 32;
  const at::Tensor org = scaled.view({out, groups, 32}).abs().amax(-1);
  const at::Tensor got_max = clipped.view({out, groups, 32}).abs().amax(-1);
  const at::Tensor errors = ref.tensors.at("clip_errors").to(at::kDouble);  // [step, out, group]
  const at::Tensor want_max = ref.tensors.at("clip_max");
  int shrunk = 0, differ = 0;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t g = 0; g < groups; ++g) {
      const double mw = want_max[o][g].item<double>(), mo = org[o][g].item<double>();
      if (mw < mo) ++shrunk;
      if (clipped[o].narrow(0, g * 32, 32).equal(want[o].narrow(0, g * 32, 32))) continue;
      ++differ;
      // Which step each picked: max = org * (1 - i / 20).
      const int64_t i_want = std::lround((1 - mw / mo) * 20);
      const int64_t i_got = std::lround((1 - got_max[o][g].item<double>() / mo) * 20);
      const double e_want = errors[i_want][o][g].item<double>(), e_got = errors[i_got][o][g].item<double>();
      EXPECT_LT(std::abs(e_got - e_want), 1e-4 * e_want + 1e-12)
          << "channel " << o << " group " << g << ": step " << i_got << " (error " << e_got << ") where the reference "
          << "picked " << i_want << " (" << e_want << ")";
    }
  EXPECT_GT(shrunk, out * groups / 4) << "the fixture should clip a fair share of the groups";
  EXPECT_LE(differ, out * groups / 50) << "near ties should be rare";
  std::printf("clip: %d of %ld groups shrunk, %d differ from the reference\n", shrunk, long(out * groups), differ);
}

namespace {

LayerCalibration calibration_of(const BertModel& m, const std::vector<CalibrationBatch>& cal) {
  LayerCalibration c;
  for (const CalibrationBatch& b : cal) {
    c.hidden.push_back(m.embed(b.input_ids));
    c.mask_bias.push_back(m.mask_bias(b.attention_mask));
    c.valid.push_back(b.attention_mask.reshape({-1}).nonzero().squeeze(1));
  }
  return c;
}

}  // namespace

TEST(AwqModel, ScalingAloneLeavesTheModelUnchanged) {
  const OutlierModel l = load_outlier_model(true, "awq/tiny");
  const auto ref = model_of(l);
  auto scaled = model_of(l);
  LayerCalibration cal = calibration_of(*scaled, calibration_batches(1, 4));
  AwqOptions o = options();
  double nontrivial = 0;
  for (int64_t i = 0; i < l.config.num_hidden_layers; ++i) {
    const AwqLayer a = awq_layer(*scaled, l.weights, i, cal, o, /*clip=*/false);
    for (LinearSlot slot : LINEAR_SLOTS) {
      const size_t k = static_cast<size_t>(slot);
      nontrivial = std::max(nontrivial, a.ratio[k]);
      scaled->set_linear(i, slot, std::make_unique<DividedFp32>(a.params[k].weight, a.params[k].bias, a.params[k].activation, a.divisor[k]));
    }
    EXPECT_FALSE(a.divisor[static_cast<size_t>(LinearSlot::attn_out)].defined()) << "folded into V";
  }
  ASSERT_GT(nontrivial, 0) << "every search chose ratio 0 (s = 1): the test would not see the folds";
  const CalibrationBatch test = calibration_batches(2, 1)[0];
  const at::Tensor a = encode(*ref, test), b = encode(*scaled, test);
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-4);
  EXPECT_GT(min_cosine(a, b), 1 - 1e-9);
}

TEST(AwqModel, BeatsRoundToNearestInt4WithOutlierChannels) {
  const OutlierModel l = load_outlier_model(true, "awq/tiny");
  const auto ref = model_of(l);
  const std::vector<CalibrationBatch> cal = calibration_batches(8, 8);
  const CalibrationBatch test = calibration_batches(9, 1)[0];
  const at::Tensor want = encode(*ref, test);
  auto rtn = model_of(l);
  quantize_model(*rtn, l.weights, parse_quant_spec("wo-int4-g32"), false);
  const double err_rtn = (encode(*rtn, test) - want).pow(2).mean().item<double>();
  auto awq = model_of(l);
  const QuantizeReport r = quantize_model(*awq, l.weights, parse_quant_spec("awq-int4-g32"), false, cal);
  EXPECT_NE(r.description.find("AWQ scale exponents"), std::string::npos) << r.description;
  const double err = (encode(*awq, test) - want).pow(2).mean().item<double>();
  EXPECT_LT(err, 0.8 * err_rtn) << "AWQ " << err << " vs round-to-nearest " << err_rtn;
  std::printf("output MSE: AWQ %.3g, round-to-nearest %.3g\n", err, err_rtn);
  auto fake = model_of(l);
  quantize_model(*fake, l.weights, parse_quant_spec("awq-int4-g32"), true, cal);
  EXPECT_GT(min_cosine(encode(*fake, test), encode(*awq, test)), 0.99999);
  auto m = model_of(l);
  try {
    quantize_model(*m, l.weights, parse_quant_spec("awq-int4-g32"), false);
    ADD_FAILURE() << "quantized without calibration";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("AWQ needs calibration texts"), std::string::npos) << e.what();
  }
}
