#pragma once
// The small random BERT the calibrated-quantization tests share
// (test_calibrated_quant.cpp, test_awq.cpp): hidden 64, FFN 128, 2 layers;
// with `outliers`, the embedding LayerNorm's gain on channels 3 and 40 is
// multiplied by 40, so every layer-0 Q/K/V input has two channels ~40x the
// others (what LLM and BERT activations show). Plus calibration batches with
// padding, a float Linear that divides its input, and cosine helpers.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "checkpoint_writer.h"
#include "runners/bert/bert_model.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/kernels/packed_linear.h"
#include "test_util.h"

namespace embeval::test {

struct OutlierModel {
  BertConfig config;
  StateDict weights;
};

inline OutlierModel load_outlier_model(bool outliers, const std::string& scratch) {
  TinyCheckpoint c;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_layers = 2;
  c.vocab_size = 200;
  c.seed = 7;
  const std::filesystem::path dir = scratch_dir(scratch);
  write_checkpoint(dir, c);
  OutlierModel l{read_bert_config(dir / "config.json"), load_state_dict(dir)};
  if (outliers) {
    at::Tensor& g = l.weights.tensors.at("embeddings.LayerNorm.weight");
    g = g.clone();
    g[3] *= 40;
    g[40] *= 40;
  }
  return l;
}

inline std::unique_ptr<BertModel> model_of(const OutlierModel& l) {
  return std::make_unique<BertModel>(l.config, l.weights, at::kFloat, c10::Device(c10::kCPU), "test");
}

// n_batches of 8 texts x 24 ids; text 1 of each is padded after 10 tokens
// (padding must stay out of the statistics).
inline std::vector<CalibrationBatch> calibration_batches(uint64_t seed, int n_batches) {
  at::manual_seed(seed);
  std::vector<CalibrationBatch> out;
  for (int b = 0; b < n_batches; ++b) {
    at::Tensor ids = at::randint(5, 200, {8, 24}, at::kLong);
    at::Tensor mask = at::ones({8, 24}, at::kLong);
    mask[1].narrow(0, 10, 14).zero_();
    ids[1].narrow(0, 10, 14).zero_();
    out.push_back({ids, mask});
  }
  return out;
}

// A float layer that divides its input: (x / d) W^T + b, d undefined = 1.
class DividedFp32 : public Linear {
 public:
  DividedFp32(const at::Tensor& weight, const at::Tensor& bias, LinearActivation act, const at::Tensor& d)
      : linear_(weight, bias, act), d_(d) {}
  at::Tensor operator()(const at::Tensor& x) const override { return linear_(d_.defined() ? x / d_ : x); }
  std::string implementation() const override { return "divided fp32"; }
  int64_t weight_bytes() const override { return linear_.weight_bytes(); }

 private:
  PackedLinear linear_;
  at::Tensor d_;
};

inline double min_cosine(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.reshape({-1, a.size(-1)}).to(at::kDouble), y = b.reshape({-1, b.size(-1)}).to(at::kDouble);
  return ((x * y).sum(1) / (x.norm(2, 1) * y.norm(2, 1))).min().item<double>();
}

inline at::Tensor encode(const BertModel& m, const CalibrationBatch& b) {
  return m.forward(b.input_ids, b.attention_mask);
}

}  // namespace embeval::test
