#include "runners/bert/bert_encoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <numeric>
#include <optional>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "datasets/sha256.h"
#include "datasets/text_util.h"
#include "harness/error.h"
#include "harness/interrupt.h"
#include "runners/bert/bert_model.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/bert/cuda_memory.h"
#include "runners/bert/torchscript_model.h"

namespace embeval {
namespace fs = std::filesystem;
namespace {

constexpr int64_t DEFAULT_BATCH_SIZE = 32;           // sentence-transformers' encode() default
constexpr int64_t DEFAULT_MAX_BATCH_TOKENS = 16384;  // 32 texts of 512 tokens
constexpr int64_t CUDA_TOKENIZE_CHUNK = 8192;        // texts tokenized ahead while the GPU works
constexpr int64_t FLUSH_ROWS = 16384;                // vectors kept on the device between copies

at::ScalarType scalar_type_of(const std::string& dtype) {
  return dtype == "fp16" ? at::kHalf : dtype == "bf16" ? at::kBFloat16 : at::kFloat;
}

}  // namespace

std::string canonical_dtype(const std::string& dtype) {
  if (dtype == "fp32" || dtype == "float32" || dtype == "float") return "fp32";
  if (dtype == "fp16" || dtype == "float16" || dtype == "half") return "fp16";
  if (dtype == "bf16" || dtype == "bfloat16") return "bf16";
  fail("unknown dtype \"{}\"; expected fp32, fp16 or bf16", dtype);
}

std::string canonical_device(const std::string& device) {
  if (device == "cpu" || device == "cuda") return device;
  if (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
      std::all_of(device.begin() + 5, device.end(), [](char c) { return c >= '0' && c <= '9'; }) && device.size() < 9)
    return fmt::format("cuda:{}", std::stoi(device.substr(5)));
  fail("unknown device \"{}\"; expected cpu, cuda or cuda:N", device);
}

struct BertEncoder::Impl {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<BertModel> model;            // hf:DIR
  std::unique_ptr<TorchScriptModel> script;    // torchscript:FILE
  bool sentence_output = false;                // the module returns pooled vectors: no pooling / Dense here
  std::optional<BertConfig> config;            // config.json (optional for TorchScript)
  int64_t vocab_size = 0;                      // 0: unknown (a TorchScript module without config.json)
  c10::Device device = c10::Device(c10::kCPU);
  struct Dense {
    at::Tensor weight, bias;  // float32 on the device
    DenseActivation activation;
  };
  std::vector<Dense> dense;  // parallel to the Dense steps of the pipeline
  int64_t batch_size = DEFAULT_BATCH_SIZE, max_batch_tokens = DEFAULT_MAX_BATCH_TOKENS;
  std::string weights_format;
  int64_t hidden_size = 0;
};

BertEncoder::BertEncoder(const fs::path& dir_in, const RunnerOptions& options, std::unique_ptr<Tokenizer> tokenizer,
                         const fs::path& torchscript_in, const ModelTransform& transform, const WeightsHook& prepare)
    : impl_(std::make_unique<Impl>()), options_(options) {
  Impl& m = *impl_;
  const bool scripted = !torchscript_in.empty();
  const fs::path torchscript = scripted ? fs::weakly_canonical(torchscript_in) : fs::path();
  const fs::path dir = fs::weakly_canonical(scripted ? torchscript.parent_path() : dir_in);
  if (scripted && !fs::is_regular_file(torchscript)) fail("{}: no such TorchScript file", torchscript.string());
  pipeline_ = read_st_pipeline(dir);
  const fs::path tdir = pipeline_.transformer_dir;
  const fs::path config_file = tdir / "config.json";
  if (!scripted && !fs::exists(config_file))
    fail("{}: missing; a Hugging Face checkpoint folder has config.json", config_file.string());
  if (!scripted) {
    m.config = read_bert_config(config_file);
  } else if (fs::exists(config_file)) {
    // A traced module may be any architecture: its config.json only tells
    // the position limit and vocabulary size when it is one embeval reads.
    try {
      m.config = read_bert_config(config_file);
    } catch (const UserError& e) {
      pipeline_.notes.push_back(std::string("config.json not used (") + e.what() + ")");
    }
  }

  const std::string dtype = canonical_dtype(options.dtype.empty() ? "fp32" : options.dtype);
  const std::string device = canonical_device(options.device.empty() ? "cpu" : options.device);
  options_.dtype = dtype;
  options_.device = device;
  if (device != "cpu") {
    if (!at::hasCUDA()) fail("--device {}: this libtorch has no CUDA device (CPU build or no GPU); use --device cpu", device);
    m.device = c10::Device(device);
    if (m.device.has_index() && static_cast<size_t>(m.device.index()) >= at::getNumGPUs())
      fail("--device {}: only {} CUDA device(s) visible", device, at::getNumGPUs());
    if (!m.device.has_index()) m.device = c10::Device(c10::kCUDA, 0);
  } else if (dtype == "fp16") {
    fail("--dtype fp16 is not supported on cpu (libtorch's CPU kernels lack fast half precision); use bf16 or fp32");
  }
  m.batch_size = options.batch_size > 0 ? options.batch_size : DEFAULT_BATCH_SIZE;
  m.max_batch_tokens = options.max_batch_tokens > 0 ? options.max_batch_tokens : DEFAULT_MAX_BATCH_TOKENS;
  if (options.batch_size < 0) fail("--batch-size must be positive, got {}", options.batch_size);
  if (options.max_batch_tokens < 0) fail("--max-batch-tokens must be positive, got {}", options.max_batch_tokens);

  // Length: sentence-transformers uses max_seq_length, else the smaller of
  // the tokenizer's model_max_length and the position table.
  // A TorchScript module without config.json: 512 unless told (the module
  // itself reports inputs longer than its position table).
  const int64_t positions = m.config ? m.config->max_input_length() : 512;
  int64_t model_len = pipeline_.max_seq_length > 0 ? pipeline_.max_seq_length
                      : pipeline_.tokenizer_max_length > 0 ? std::min(pipeline_.tokenizer_max_length, positions)
                                                           : positions;
  if (model_len > positions)
    fail("{}: max_seq_length {} exceeds the {} positions config.json allows", (tdir / "sentence_bert_config.json").string(),
         model_len, positions);
  if (options.max_length < 0 || options.max_length == 1) fail("--max-length must be at least 2, got {}", options.max_length);
  if (options.max_length > positions)
    fail("--max-length {} exceeds the {} positions of {}", options.max_length, positions, config_file.string());
  max_length_ = options.max_length > 0 ? options.max_length : model_len;

  // Ids beyond the embedding table are caught per text in encode(): some
  // tokenizers list added tokens a checkpoint never produces.
  m.tokenizer = tokenizer ? std::move(tokenizer) : load_tokenizer(tdir);

  const at::ScalarType st = scalar_type_of(dtype);
  int64_t n_params = 0;
  int64_t dim = 0;
  std::vector<fs::path> fingerprint_files;
  std::string checkpoint_quant;  // the quantization a checkpoint came with
  if (scripted) {
    m.script = std::make_unique<TorchScriptModel>(torchscript, m.device, st);
    m.weights_format = "TorchScript";
    n_params = m.script->n_parameters();
    fingerprint_files.push_back(torchscript);
    // What the module returns decides what runs after it: one probe with the
    // shortest input ([CLS] [SEP] or its equivalent).
    std::vector<int32_t> probe_ids = m.tokenizer->encode("", max_length_);
    at::Tensor probe_in = at::tensor(std::vector<int64_t>(probe_ids.begin(), probe_ids.end()), at::kLong).unsqueeze(0);
    at::Tensor probe = m.script->forward(probe_in.to(m.device), at::ones_like(probe_in).to(m.device));
    m.sentence_output = probe.dim() == 2;
    m.hidden_size = probe.size(-1);
    if (m.sentence_output)
      pipeline_.notes.push_back("the TorchScript module returns sentence vectors: the folder's Pooling / Dense / "
                                "Normalize modules are not applied");
  } else {
    StateDict weights = load_state_dict(tdir);
    if (prepare) checkpoint_quant = prepare(weights, tdir);
    if (!checkpoint_quant.empty() && !options.quant.empty())
      fail("{}: the checkpoint is already quantized ({}); drop --quant {}", tdir.string(), checkpoint_quant,
           options.quant);
    m.weights_format = weights.format;
    m.model = std::make_unique<BertModel>(*m.config, weights, st, m.device,
                                          weights.files.empty() ? tdir.string() : weights.files.front().string());
    m.hidden_size = m.config->hidden_size;
    n_params = m.model->n_parameters();
    fingerprint_files = checkpoint_weight_files(tdir);
    for (const char* name : {"quantize_config.json", "quant_config.json"})
      if (fs::exists(tdir / name)) fingerprint_files.push_back(tdir / name);
    if (!checkpoint_quant.empty()) {
      EMBEVAL_ASSERT(transform);
      quant_description_ = transform(*m.model, weights, {});
    }
    if (!options.quant.empty()) {
      EMBEVAL_ASSERT(transform);
      // Calibration texts as the encoder tokenizes them (no prompt), longest
      // first, in batches of 16 padded to their own longest text.
      std::vector<std::vector<int32_t>> ids;
      for (const std::string& t : options.calib_texts) ids.push_back(m.tokenizer->encode(t, max_length_));
      std::stable_sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
      std::vector<CalibrationBatch> batches;
      for (size_t i = 0; i < ids.size(); i += 16) {
        const size_t n = std::min<size_t>(16, ids.size() - i);
        const int64_t t = static_cast<int64_t>(ids[i].size());
        at::Tensor input = at::full({static_cast<int64_t>(n), t}, m.tokenizer->pad_id(), at::kLong);
        at::Tensor mask = at::zeros({static_cast<int64_t>(n), t}, at::kLong);
        for (size_t r = 0; r < n; ++r) {
          const auto& row = ids[i + r];
          for (size_t c = 0; c < row.size(); ++c) input[r][c] = row[c];
          mask[r].narrow(0, 0, static_cast<int64_t>(row.size())).fill_(1);
        }
        batches.push_back({input.to(m.device), mask.to(m.device)});
      }
      quant_description_ = transform(*m.model, weights, batches);
    }
  }
  if (scripted && !options.quant.empty())
    fail("{}: a TorchScript module cannot be quantized by embeval (its Linear layers are inside the module); quantize "
         "the checkpoint folder instead",
         torchscript.string());
  if (m.config) m.vocab_size = m.config->vocab_size;

  // Pooling dimension, then each Dense step, must chain.
  if (!m.sentence_output && pipeline_.pooling.word_embedding_dimension != 0 &&
      pipeline_.pooling.word_embedding_dimension != m.hidden_size)
    fail("{}: word_embedding_dimension {} differs from the model's hidden size {}",
         (dir / "1_Pooling" / "config.json").string(), pipeline_.pooling.word_embedding_dimension, m.hidden_size);
  dim = m.sentence_output ? m.hidden_size : pipeline_.pooled_dim(m.hidden_size);
  for (const PostStep& s : pipeline_.post) {
    if (m.sentence_output) break;
    if (s.kind != PostStep::POST_DENSE) continue;
    const std::string cfg = (s.dir / "config.json").string();
    if (s.in_features != dim) fail("{}: in_features {}; the previous module outputs {}", cfg, s.in_features, dim);
    StateDict dw = load_state_dict(s.dir);
    auto take = [&](const char* name, std::vector<int64_t> shape) {
      const at::Tensor t = required_tensor(dw, name, dw.files.front().string());
      if (t.sizes().vec() != shape)
        fail("{}: tensor \"{}\" has shape [{}]; config.json implies [{}]", dw.origin[name].string(), name,
             fmt::join(t.sizes(), ", "), fmt::join(shape, ", "));
      require_finite(t, dw.origin[name].string(), name);
      n_params += t.numel();
      return t.to(at::TensorOptions().dtype(at::kFloat).device(m.device));
    };
    Impl::Dense d;
    d.weight = take("linear.weight", {s.out_features, s.in_features});
    if (s.bias) d.bias = take("linear.bias", {s.out_features});
    d.activation = s.activation;
    m.dense.push_back(d);
    dim = s.out_features;
    for (const auto& f : checkpoint_weight_files(s.dir)) fingerprint_files.push_back(f);
    fingerprint_files.push_back(s.dir / "config.json");
  }

  // Anything that changes the vectors changes the fingerprint: weights,
  // configuration, tokenizer files, and options that alter inputs.
  data::Sha256 h;
  for (const char* name : {"config.json", "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json", "vocab.txt", "sentencepiece.bpe.model", "added_tokens.json"})
    if (fs::exists(tdir / name)) fingerprint_files.push_back(tdir / name);
  for (const char* name : {"modules.json", "config_sentence_transformers.json", "1_Pooling/config.json"})
    if (fs::exists(dir / name)) fingerprint_files.push_back(dir / name);
  for (const auto& f : fingerprint_files) {
    h.update(f.lexically_relative(dir).string());
    h.update(std::string(1, '\0'));
    h.update(data::sha256_file(f));
  }
  h.update(fmt::format("max_length={}", max_length_));
  if (!options.quant.empty()) {
    h.update("quant=" + options.quant + (options.fake_quant ? ",fakequant" : "") + '\0');
    // Calibrated methods depend on their texts: the same texts give the same fingerprint.
    if (!options.calib_texts.empty()) {
      h.update(fmt::format("calib={}", options.calib_texts.size()));
      for (const std::string& t : options.calib_texts) h.update(t + '\0');
    }
  }
  if (options_.query_prompt) h.update("query_prompt=" + *options_.query_prompt + '\0');
  if (options_.passage_prompt) h.update("passage_prompt=" + *options_.passage_prompt + '\0');

  info_.spec = scripted ? fmt::format("torchscript:{},{}", torchscript.string(), dtype)
                        : fmt::format("hf:{},{}", dir.string(), dtype);
  if (options.max_length > 0 && options.max_length != model_len) info_.spec += fmt::format(",maxlen={}", max_length_);
  if (!options.quant.empty()) {
    info_.spec += "," + options.quant + (options.fake_quant ? ",fakequant" : "");
    info_.quantization = options.quant + (options.fake_quant ? " (fake-quant)" : "");
    if (!options.calib_source.empty()) info_.quantization += "; calibration: " + options.calib_source;
  }
  if (!checkpoint_quant.empty()) info_.quantization = checkpoint_quant + " (quantized checkpoint)";
  info_.name = scripted ? (dir.filename() / torchscript.filename()).string() : dir.filename().string();
  info_.fingerprint = "sha256:" + h.hex_digest();
  info_.dim = dim;
  info_.similarity = pipeline_.similarity;
  info_.n_parameters = n_params;
  info_.max_tokens = max_length_;
  info_.dtype = dtype;
  info_.device = device == "cuda" ? "cuda:0" : device;
}

BertEncoder::~BertEncoder() = default;

int64_t BertEncoder::peak_device_bytes() const {
  return impl_->device.is_cuda() ? cuda_peak_allocated_bytes(impl_->device.index()) : -1;
}

void BertEncoder::reset_peak_device_bytes() {
  if (impl_->device.is_cuda()) cuda_reset_peak_allocated_bytes(impl_->device.index());
}

std::string BertEncoder::prompt_used(const EncodeOptions& options) const {
  // --query-prompt / --passage-prompt override everything, each for its role.
  if (options.role == ROLE_QUERY && options_.query_prompt) return *options_.query_prompt;
  if (options.role == ROLE_PASSAGE && options_.passage_prompt) return *options_.passage_prompt;
  // The model's own prompts, looked up as mteb 1.39.7 does
  // (mteb/models/wrapper.py get_prompt_name): "<task>-<type>", "<task>",
  // "<task type>-<type>", "<task type>", "<type>", where <type> is query or
  // passage and the forms with it are skipped for text sets encoded without
  // one (ROLE_NONE: STS, PairClassification, Classification, Clustering).
  const auto& prompts = pipeline_.prompts;
  const std::string kind = options.role == ROLE_NONE ? "" : role_name(options.role);
  std::vector<std::string> keys;
  if (!options.task_name.empty()) {
    if (!kind.empty()) keys.push_back(options.task_name + "-" + kind);
    keys.push_back(options.task_name);
  }
  if (!options.task_type.empty()) {
    if (!kind.empty()) keys.push_back(options.task_type + "-" + kind);
    keys.push_back(options.task_type);
  }
  if (!kind.empty()) keys.push_back(kind);
  for (const std::string& k : keys)
    if (auto it = prompts.find(k); it != prompts.end()) return it->second;
  // Then the task's own instruction (task.json), then what
  // sentence-transformers applies when no prompt name is given.
  if (!options.prompt.empty()) return options.prompt;
  if (!pipeline_.default_prompt_name.empty()) return prompts.at(pipeline_.default_prompt_name);
  return "";
}

std::vector<int32_t> BertEncoder::token_ids(const std::string& text, const EncodeOptions& options) const {
  // sentence-transformers prepends the prompt; the tokenizer strips and
  // lower-cases (do_lower_case) as it does.
  return impl_->tokenizer->encode(prompt_used(options) + text, max_length_);
}

Matrix BertEncoder::encode(const std::vector<std::string>& texts, const EncodeOptions& options) {
  Impl& m = *impl_;
  const int64_t n = static_cast<int64_t>(texts.size());
  Matrix out(n, info_.dim);
  last_tokens_ = 0;
  if (n == 0) return out;

  // Tokenize on ATen's threads (tokenizers are safe to share); the first
  // error is rethrown as it was thrown. Returns the ids of texts [begin, end).
  const int64_t vocab = m.vocab_size > 0 ? m.vocab_size : std::numeric_limits<int32_t>::max();
  auto tokenize = [this, &texts, &options, vocab](int64_t begin, int64_t end) {
    std::vector<std::vector<int32_t>> ids(static_cast<size_t>(end - begin));
    at::parallel_for(begin, end, 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ids[static_cast<size_t>(i - begin)] = token_ids(texts[static_cast<size_t>(i)], options);
    });
    for (int64_t i = begin; i < end; ++i) {
      const auto& row = ids[static_cast<size_t>(i - begin)];
      const std::string& text = texts[static_cast<size_t>(i)];
      if (row.empty()) fail("tokenizer returned no ids for text \"{}\"", data::utf8_preview(text, 60));
      for (int32_t id : row)
        if (id < 0 || id >= vocab)
          fail("token id {} of text \"{}\" is outside the embedding table (vocab_size {} in {}); the tokenizer "
               "files and the checkpoint do not belong together",
               id, data::utf8_preview(text, 60), vocab, (pipeline_.transformer_dir / "config.json").string());
    }
    return ids;
  };
  // Prompt tokens left out of pooling: [CLS] + the prompt's tokens, as
  // sentence-transformers counts them (its ids minus the trailing [SEP]).
  int64_t prompt_len = 0;
  if (!pipeline_.pooling.include_prompt) {
    const std::string prompt = prompt_used(options);
    if (!data::python_strip(prompt).empty())
      prompt_len = static_cast<int64_t>(m.tokenizer->encode(prompt, max_length_).size()) - 1;
  }

  // A batch's [b, dim] vectors stay on the device until a flush copies a
  // run of batches to the host at once: on CUDA the host thread keeps
  // queueing work (and tokenizing) instead of waiting for every batch.
  std::vector<at::Tensor> pending;
  std::vector<int64_t> pending_rows;  // output row of each pending vector, in order
  int64_t done = 0;                   // texts through the model, for options.progress
  auto flush = [&]() {
    if (pending.empty()) return;
    at::Tensor all = (pending.size() == 1 ? pending[0] : at::cat(pending, 0)).to(at::kCPU).contiguous();
    const float* ep = all.data_ptr<float>();
    for (size_t r = 0; r < pending_rows.size(); ++r)
      std::memcpy(out.row(pending_rows[r]), ep + r * info_.dim, static_cast<size_t>(info_.dim) * sizeof(float));
    pending.clear();
    pending_rows.clear();
  };
  auto keep = [&](const at::Tensor& emb, const std::vector<int64_t>& rows) {
    const int64_t b = static_cast<int64_t>(rows.size());
    if (emb.dim() != 2 || emb.size(0) != b || emb.size(1) != info_.dim)
      fail("{}: a batch of {} texts gave vectors of shape [{}]; expected [{}, {}]", info_.spec, b,
           fmt::join(emb.sizes(), ", "), b, info_.dim);
    pending.push_back(emb.to(at::kFloat));
    pending_rows.insert(pending_rows.end(), rows.begin(), rows.end());
    done += b;
    if (options.progress) options.progress(done, n);
    if (static_cast<int64_t>(pending_rows.size()) >= FLUSH_ROWS) flush();
  };

  c10::InferenceMode guard;
  const bool cuda = m.device.is_cuda();
  const int32_t pad = m.tokenizer->pad_id();
  const int64_t h = m.hidden_size;
  // On CUDA, texts are tokenized in chunks, the next chunk on a second thread
  // while this one queues the current chunk's batches; each chunk is length-
  // sorted on its own. On the CPU the forward pass wants every core: one chunk.
  const int64_t chunk = options_.tokenize_chunk > 0 ? options_.tokenize_chunk : cuda ? CUDA_TOKENIZE_CHUNK : n;
  std::future<std::vector<std::vector<int32_t>>> next;
  for (int64_t c0 = 0; c0 < n; c0 += chunk) {
    const int64_t c1 = std::min(n, c0 + chunk);
    std::vector<std::vector<int32_t>> ids = c0 == 0 ? tokenize(c0, c1) : next.get();
    if (c1 < n) next = std::async(std::launch::async, tokenize, c1, std::min(n, c1 + chunk));
    const int64_t cn = c1 - c0;
    for (const auto& row : ids) last_tokens_ += static_cast<int64_t>(row.size());
    std::vector<int64_t> order(static_cast<size_t>(cn));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });

    for (int64_t start = 0; start < cn;) {
      check_interrupt();  // Ctrl-C abandons the call between batches
      const int64_t t = static_cast<int64_t>(ids[order[start]].size());  // longest of the batch
      int64_t end = start + 1;
      // A text shorter than half the batch's longest starts a new batch (above
      // 64 tokens): padding it would cost more than the extra forward pass.
      auto fits = [&](int64_t j) {
        const int64_t len = static_cast<int64_t>(ids[order[j]].size());
        return j - start < m.batch_size && (j - start + 1) * t <= m.max_batch_tokens && (2 * len >= t || t <= 64);
      };
      while (end < cn && fits(end)) ++end;
      const int64_t b = end - start;
      std::vector<int64_t> rows(static_cast<size_t>(b));
      for (int64_t r = 0; r < b; ++r) rows[static_cast<size_t>(r)] = c0 + order[start + r];

      auto host = at::TensorOptions().dtype(at::kLong).pinned_memory(cuda);
      at::Tensor input = at::full({b, t}, pad, host);
      at::Tensor mask = at::zeros({b, t}, host);
      int64_t* ip = input.data_ptr<int64_t>();
      int64_t* mp = mask.data_ptr<int64_t>();
      for (int64_t r = 0; r < b; ++r) {
        const auto& row = ids[order[start + r]];
        for (size_t c = 0; c < row.size(); ++c) ip[r * t + c] = row[c], mp[r * t + c] = 1;
      }
      if (cuda) {
        input = input.to(m.device, /*non_blocking=*/true);
        mask = mask.to(m.device, /*non_blocking=*/true);
      }
      at::Tensor tokens = (m.model ? m.model->forward(input, mask) : m.script->forward(input, mask)).to(at::kFloat);
      if (m.sentence_output) {  // [b, dim], final
        keep(tokens, rows);
        start = end;
        continue;
      }
      // [b, t, h] token states from here on.

      // Pooling (sentence-transformers' Pooling.forward), in float32.
      at::Tensor pool_mask = mask;
      if (prompt_len > 0) {
        pool_mask = mask.clone();
        pool_mask.narrow(1, 0, std::min(prompt_len, t)).zero_();
      }
      at::Tensor fmask = pool_mask.to(at::kFloat).unsqueeze(-1);  // [b, t, 1]
      std::vector<at::Tensor> parts;
      at::Tensor sum, count;
      for (PoolingMode mode : pipeline_.pooling.modes) {
        switch (mode) {
          case POOLING_CLS: parts.push_back(tokens.select(1, 0)); break;
          case POOLING_MAX:
            parts.push_back(std::get<0>(tokens.masked_fill(fmask.eq(0), -1e9).max(1)));
            break;
          case POOLING_MEAN:
          case POOLING_MEAN_SQRT_LEN:
            if (!sum.defined()) {
              sum = (tokens * fmask).sum(1);
              count = fmask.sum(1).clamp_min(1e-9);
            }
            parts.push_back(mode == POOLING_MEAN ? sum / count : sum / count.sqrt());
            break;
          case POOLING_WEIGHTED_MEAN: {
            at::Tensor w = at::arange(1, t + 1, at::TensorOptions().dtype(at::kFloat).device(m.device))
                               .view({1, t, 1}) * fmask;
            parts.push_back((tokens * w).sum(1) / w.sum(1).clamp_min(1e-9));
            break;
          }
          case POOLING_LAST_TOKEN: {
            // The last position the mask keeps (right padding); position 0 when
            // it keeps none, as sentence-transformers' flip/max/where does.
            auto [values, idx] = pool_mask.flip({1}).max(1);
            at::Tensor last = at::where(values.eq(0), at::full_like(idx, t - 1), idx);
            at::Tensor pos = (t - 1) - last;
            parts.push_back(tokens.gather(1, pos.view({b, 1, 1}).expand({b, 1, h})).squeeze(1));
            break;
          }
        }
      }
      at::Tensor emb = parts.size() == 1 ? parts[0] : at::cat(parts, 1);
      size_t dense_i = 0;
      for (const PostStep& s : pipeline_.post) {
        if (s.kind == PostStep::POST_NORMALIZE) {
          emb = emb / emb.norm(2, 1, true).clamp_min(1e-12);
          continue;
        }
        const Impl::Dense& d = m.dense[dense_i++];
        emb = at::linear(emb, d.weight, d.bias.defined() ? d.bias : at::Tensor());
        switch (d.activation) {
          case DENSE_ACTIVATION_IDENTITY: break;
          case DENSE_ACTIVATION_TANH: emb = at::tanh(emb); break;
          case DENSE_ACTIVATION_RELU: emb = at::relu(emb); break;
          case DENSE_ACTIVATION_GELU: emb = at::gelu(emb); break;
          case DENSE_ACTIVATION_SIGMOID: emb = at::sigmoid(emb); break;
        }
      }
      keep(emb, rows);
      start = end;
    }
  }
  flush();
  return out;
}

nlohmann::ordered_json BertEncoder::describe() const {
  const Impl& m = *impl_;
  nlohmann::ordered_json j;
  j["path"] = pipeline_.dir.string();
  j["spec"] = info_.spec;
  if (m.script) {
    j["architecture"] = fmt::format("TorchScript module {} (returns {}){}", m.script->file().filename().string(),
                                    m.sentence_output ? "sentence vectors" : "token states",
                                    m.config ? ", config.json model_type " + m.config->model_type : "");
    j["parameters"] = info_.n_parameters;
    j["weights"] = m.script->file().string();
  } else {
    const BertConfig& c = *m.config;
    j["architecture"] = fmt::format("{} ({} layers, hidden {}, {} heads, FFN {}, {})", c.model_type,
                                    c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size,
                                    c.hidden_act_name);
    j["parameters"] = info_.n_parameters;
    j["weights"] = fmt::format("{} ({}stored {})", m.weights_format,
                               m.model->weight_prefix().empty() ? "" : "prefix " + m.model->weight_prefix() + ", ",
                               c.torch_dtype.empty() ? "dtype unknown" : c.torch_dtype);
  }
  j["tokenizer"] = m.tokenizer->describe();
  j["max_length"] = max_length_;
  j["do_lower_case"] = pipeline_.do_lower_case;
  std::vector<std::string> modes;
  for (PoolingMode p : pipeline_.pooling.modes) modes.push_back(pooling_mode_name(p));
  j["pooling"] = fmt::format("{}{}", fmt::join(modes, "+"), pipeline_.pooling.include_prompt ? "" : " (prompt excluded)");
  std::vector<std::string> dense;
  for (const PostStep& s : pipeline_.post)
    if (s.kind == PostStep::POST_DENSE) {
      std::string act = s.activation_name.substr(s.activation_name.rfind('.') + 1);
      dense.push_back(fmt::format("{} -> {} ({}{})", s.in_features, s.out_features, act, s.bias ? "" : ", no bias"));
    }
  j["dense"] = dense.empty() ? "none" : fmt::format("{}", fmt::join(dense, ", "));
  j["normalize"] = pipeline_.normalizes();
  j["dim"] = info_.dim;
  j["similarity"] = similarity_name(info_.similarity);
  j["dtype"] = info_.dtype;
  if (!quant_description_.empty()) j["quantization"] = quant_description_;
  j["device"] = info_.device;
  if (m.model) j["linear_kernel"] = m.model->linear_implementation();
  nlohmann::ordered_json prompts = nlohmann::ordered_json::object();
  for (const auto& [k, v] : pipeline_.prompts) prompts[k] = v;
  j["prompts"] = prompts;
  j["default_prompt_name"] = pipeline_.default_prompt_name.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(pipeline_.default_prompt_name);
  if (options_.query_prompt) j["query_prompt_override"] = *options_.query_prompt;
  if (options_.passage_prompt) j["passage_prompt_override"] = *options_.passage_prompt;
  j["fingerprint"] = info_.fingerprint;
  j["notes"] = pipeline_.notes;
  return j;
}

}  // namespace embeval
