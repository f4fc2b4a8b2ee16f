#pragma once
// hf:DIR — a Hugging Face / sentence-transformers checkpoint folder (BERT
// or XLM-R family) run natively on libtorch — or torchscript:FILE, a traced
// module in place of the native stack — encoding exactly as
// sentence-transformers' SentenceTransformer.encode would: prompt prepended,
// text stripped (and lower-cased when sentence_bert_config.json says so),
// tokenized and truncated to max_seq_length, the encoder stack, then the
// Pooling / Dense / Normalize modules of modules.json.
//
// Batching: texts are sorted by token count (longest first) and cut into
// batches of at most batch_size texts and max_batch_tokens padded tokens,
// each padded only to its own longest text (a text under half that length,
// beyond 64 tokens, starts the next batch); rows come back in input order.
// A text's vector does not depend on its batch-mates beyond floating-point
// rounding (padding is masked out of attention and pooling).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/encoder.h"
#include "runners/bert/runner_options.h"
#include "runners/bert/st_pipeline.h"
#include "runners/tokenizers/tokenizer.h"

namespace embeval {

class BertModel;
struct StateDict;
struct CalibrationBatch;

// Applied to the loaded model before any text is encoded, when the options
// name a quantization method: quantization lives above bert/ and comes in
// through this, with options.calib_texts tokenized as the encoder would
// (no prompt), in batches. Returns what it did, for the run record.
using ModelTransform = std::function<std::string(BertModel& model, const StateDict& weights,
                                                 const std::vector<CalibrationBatch>& calibration)>;

// Runs on the weights as read, before the model is built (quantized
// checkpoints: packed layers become float weights the model is built from,
// and the transform swaps in their kernels). Returns the checkpoint's own
// quantization method ("" when it has none); when not empty, `transform`
// runs after loading (with no calibration).
using WeightsHook = std::function<std::string(StateDict& weights, const std::filesystem::path& dir)>;

class BertEncoder : public Encoder {
 public:
  // `tokenizer` null: the folder's own (load_tokenizer). With `torchscript`
  // set, that module replaces the folder's weights (torchscript:FILE; the
  // folder is FILE's and needs only the tokenizer files; config.json and the
  // sentence-transformers files are used when present). Errors name the file.
  // `transform` runs after loading when options.quant is set (required then)
  // or `prepare` found a quantized checkpoint.
  BertEncoder(const std::filesystem::path& dir, const RunnerOptions& options,
              std::unique_ptr<Tokenizer> tokenizer = nullptr, const std::filesystem::path& torchscript = {},
              const ModelTransform& transform = nullptr, const WeightsHook& prepare = nullptr);
  ~BertEncoder() override;

  Matrix encode(const std::vector<std::string>& texts, const EncodeOptions& options) override;
  const EncoderInfo& info() const override { return info_; }
  int64_t last_token_count() const override { return last_tokens_; }
  std::string prompt_used(const EncodeOptions& options) const override;
  int64_t peak_device_bytes() const override;
  void reset_peak_device_bytes() override;

  // The ids the model sees for a text in a role: prompt prepended, then the
  // tokenizer strips (and lower-cases if configured), adds specials and
  // truncates to max_length().
  std::vector<int32_t> token_ids(const std::string& text, const EncodeOptions& options) const;
  int64_t max_length() const { return max_length_; }
  const StPipeline& pipeline() const { return pipeline_; }
  // What the quantization transform did ("" when none ran).
  const std::string& quantization_description() const { return quant_description_; }
  // Everything `embeval models inspect` prints, in display order.
  nlohmann::ordered_json describe() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  StPipeline pipeline_;
  RunnerOptions options_;
  EncoderInfo info_;
  int64_t max_length_ = 0;
  int64_t last_tokens_ = -1;
  std::string quant_description_;
};

// Canonical names of the options the encoder accepts; UserError otherwise.
std::string canonical_dtype(const std::string& dtype);    // fp32 | fp16 | bf16 (also float32, half, ...)
std::string canonical_device(const std::string& device);  // cpu | cuda | cuda:N

}  // namespace embeval
