#include "runners/encoder_factory.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/error.h"
#include "runners/bert/bert_encoder.h"
#include "runners/bert/st_pipeline.h"
#include "runners/char_ngram_encoder.h"
#include "runners/precomputed_encoder.h"
#include "runners/quant/quant_spec.h"
#include "runners/quant/quantize_model.h"
#include "runners/quant/quantized_checkpoint.h"

namespace embeval {
namespace {

const char* const BASELINES[] = {"char-ngram"};

std::unique_ptr<Encoder> parse_precomputed(const std::string& spec, const std::string& arg) {
  if (arg.empty()) fail("could not parse model spec \"{}\": precomputed needs a file, e.g. precomputed:vecs.jsonl", spec);
  return std::make_unique<PrecomputedEncoder>(arg);
}

std::unique_ptr<Encoder> parse_baseline(const std::string& spec, const std::string& arg) {
  if (arg == "char-ngram") return std::make_unique<CharNgramEncoder>();
  std::vector<std::string> known(std::begin(BASELINES), std::end(BASELINES));
  fail("could not parse model spec \"{}\": unknown baseline \"{}\"{}; known baselines: {}", spec, arg,
       did_you_mean(arg, known), fmt::join(known, ", "));
}

// A positive integer after "key=", or an error naming the token.
int64_t parse_count(const std::string& spec, const std::string& token, size_t skip) {
  const std::string digits = token.substr(skip);
  if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), ::isdigit) ||
      std::stoll(digits) <= 0)
    fail("could not parse model spec \"{}\": \"{}\" needs a positive integer", spec, token);
  return std::stoll(digits);
}

// A setting given twice must agree.
template <class T>
void set_once(const std::string& spec, const char* what, T* field, const T& value, const T& unset) {
  if (*field != unset && *field != value)
    fail("could not parse model spec \"{}\": {} {} contradicts {} {}", spec, what, fmt::to_string(value), what,
         fmt::to_string(*field));
  *field = value;
}

// PATH[,token]*: the path and the tokens after it. A path that exists as
// given (`exists`) is taken whole, so a file or folder whose own name has a
// comma still works.
std::pair<std::string, std::vector<std::string>> split_path_tokens(const std::string& arg,
                                                                   bool (*exists)(const std::string&)) {
  if (exists(arg)) return {arg, {}};
  std::vector<std::string> parts;
  for (size_t pos = 0;;) {
    size_t comma = arg.find(',', pos);
    parts.push_back(arg.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return {parts[0], std::vector<std::string>(parts.begin() + 1, parts.end())};
}

// Precomputed vectors and the baselines have no weights to quantize.
void check_weightless(const std::string& spec, const std::string& backend, const RunnerOptions& options) {
  if ((backend == "precomputed" || backend == "baseline") && (!options.quant.empty() || options.fake_quant))
    fail("could not parse model spec \"{}\": --quant applies to checkpoint folders (hf:DIR); a {} model has no "
         "weights to quantize",
         spec, backend);
}

bool is_folder(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}

bool is_file(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

std::unique_ptr<Encoder> parse_hf(const std::string& spec, const std::string& arg, const RunnerOptions& flags) {
  if (arg.empty()) fail("could not parse model spec \"{}\": hf needs a checkpoint folder, e.g. hf:/models/bge-small-zh-v1.5", spec);
  auto [dir, tokens] = split_path_tokens(arg, is_folder);
  if (!is_folder(dir))
    fail("could not parse model spec \"{}\": {} is not a folder; expected a checkpoint folder with config.json", spec,
         dir);
  const RunnerOptions o = parse_runner_tokens(spec, tokens, flags);
  // A quantized checkpoint (GPTQ / AWQ / W8A8 layouts) is read by `prepare`
  // and gets its kernels from `transform`; --quant quantizes a float one.
  auto loaded = std::make_shared<std::optional<LoadedQuantization>>();
  const WeightsHook prepare = [loaded](StateDict& weights, const std::filesystem::path& tdir) {
    *loaded = read_quantized_checkpoint(tdir, weights);
    return *loaded ? (*loaded)->method : std::string();
  };
  const QuantSpec q = o.quant.empty() ? QuantSpec() : parse_quant_spec(o.quant);
  const bool fake = o.fake_quant;
  const bool quantize = !o.quant.empty();
  const std::string where = dir;
  const ModelTransform transform = [=](BertModel& model, const StateDict& weights,
                                       const std::vector<CalibrationBatch>& calibration) {
    if (*loaded) return install_quantized_checkpoint(model, weights, **loaded, where);
    EMBEVAL_ASSERT(quantize);
    const QuantizeReport r = quantize_model(model, weights, q, fake, calibration);
    return fmt::format("{} ({:.1f} s; Linear weights {:.2f} -> {:.2f} MB)", r.description, r.seconds,
                       r.bytes_before / 1e6, r.bytes_after / 1e6);
  };
  return std::make_unique<BertEncoder>(dir, o, nullptr, std::filesystem::path(), transform, prepare);
}

// torchscript:FILE[,token]*: the tokenizer (and any sentence-transformers
// files) come from FILE's folder.
std::unique_ptr<Encoder> parse_torchscript(const std::string& spec, const std::string& arg, const RunnerOptions& flags) {
  if (arg.empty())
    fail("could not parse model spec \"{}\": torchscript needs a module file, e.g. torchscript:/models/bge/traced.pt",
         spec);
  auto [file, tokens] = split_path_tokens(arg, is_file);
  if (!is_file(file))
    fail("could not parse model spec \"{}\": {} is not a file; expected a TorchScript module (.pt)", spec, file);
  return std::make_unique<BertEncoder>(std::filesystem::path(), parse_runner_tokens(spec, tokens, flags), nullptr,
                                       file);
}

}  // namespace

RunnerOptions parse_runner_tokens(const std::string& spec, const std::vector<std::string>& tokens,
                                  const RunnerOptions& flags) {
  RunnerOptions o = flags;
  if (!o.dtype.empty()) o.dtype = canonical_dtype(o.dtype);
  if (!o.device.empty()) o.device = canonical_device(o.device);
  if (!o.quant.empty()) o.quant = parse_quant_spec(o.quant).name();
  const bool fake_flag = o.fake_quant;
  for (const auto& t : tokens) {
    if (t == "fp32" || t == "fp16" || t == "bf16") {
      set_once<std::string>(spec, "dtype", &o.dtype, t, "");
    } else if (t == "cpu" || t == "cuda" || t.rfind("cuda:", 0) == 0) {
      set_once<std::string>(spec, "device", &o.device, canonical_device(t), "");
    } else if (t.rfind("maxlen=", 0) == 0) {
      set_once<int64_t>(spec, "max length", &o.max_length, parse_count(spec, t, 7), 0);
    } else if (t.rfind("batch=", 0) == 0) {
      set_once<int64_t>(spec, "batch size", &o.batch_size, parse_count(spec, t, 6), 0);
    } else if (t.rfind("tokens=", 0) == 0) {
      set_once<int64_t>(spec, "max batch tokens", &o.max_batch_tokens, parse_count(spec, t, 7), 0);
    } else if (is_quant_token(t)) {
      std::string name;
      try {
        name = parse_quant_spec(t).name();
      } catch (const UserError& e) {
        fail("could not parse model spec \"{}\": {}", spec, e.what());
      }
      set_once<std::string>(spec, "quantization", &o.quant, name, "");
    } else if (t == "fakequant") {
      o.fake_quant = true;
    } else {
      std::vector<std::string> known = {"fp32", "fp16", "bf16", "cpu", "cuda", "maxlen=", "batch=", "tokens=",
                                        "wo-int8", "wo-int4-g128", "w8a8", "fakequant"};
      fail("could not parse model spec \"{}\": unknown token \"{}\"{}; known tokens: fp32, fp16, bf16, cpu, cuda[:N], "
           "maxlen=N, batch=N, tokens=N, a quantization method (wo-int8, wo-int4-g128, w8a8, ...), fakequant",
           spec, t, did_you_mean(t, known));
    }
  }
  if ((o.fake_quant || fake_flag) && o.quant.empty())
    fail("could not parse model spec \"{}\": fakequant needs a quantization method (e.g. ,wo-int8,fakequant)", spec);
  return o;
}

RunnerOptions spec_options(const std::string& spec, const RunnerOptions& flags) {
  // The same dispatch as make_encoder's, below.
  const auto colon = spec.find(':');
  const std::string backend = colon == std::string::npos ? spec : spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  check_weightless(spec, backend, flags);
  if (backend == "precomputed" || backend == "baseline") return flags;
  if (backend == "torchscript") return parse_runner_tokens(spec, split_path_tokens(arg, is_file).second, flags);
  std::pair<std::string, std::vector<std::string>> parts;
  if (backend == "hf" || backend == "bert")
    parts = split_path_tokens(arg, is_folder);
  else if (is_folder(spec) || is_folder(spec.substr(0, spec.find(','))))
    parts = split_path_tokens(spec, is_folder);
  else
    return flags;  // not a model: make_encoder says so
  const RunnerOptions o = parse_runner_tokens(spec, parts.second, flags);
  // A method on a folder that is quantized already: said before a run of
  // several variants records the first (BertEncoder says it too, on load).
  if (!o.quant.empty() && is_folder(parts.first)) {
    const std::filesystem::path tdir = read_st_pipeline(parts.first).transformer_dir;
    if (const auto file = quantization_config_file(tdir))
      fail("{}: the checkpoint is already quantized ({}); drop --quant {}", tdir.string(), file->filename().string(),
           o.quant);
  }
  return o;
}

std::vector<std::string> encoder_spec_forms() {
  return {"precomputed:FILE (JSONL lines {\"text\", \"embedding\"})",
          "baseline:char-ngram (hashed character 1-3-gram TF-IDF, no weights)",
          "hf:DIR[,fp32|fp16|bf16][,cpu|cuda[:N]][,maxlen=N][,batch=N][,tokens=N][,METHOD[,fakequant]] or just DIR (a "
          "Hugging Face / sentence-transformers checkpoint folder, BERT or XLM-R; METHOD quantizes it: wo-int8, "
          "wo-int4-g128, w8a8, ...)",
          "torchscript:FILE[,same tokens as hf] (a module traced as (input_ids, attention_mask) -> vectors or token "
          "states; tokenizer files next to it)"};
}

std::unique_ptr<Encoder> make_encoder(const std::string& spec, const RunnerOptions& options) {
  auto colon = spec.find(':');
  std::string backend = colon == std::string::npos ? spec : spec.substr(0, colon);
  std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  check_weightless(spec, backend, options);
  if (backend == "precomputed") return parse_precomputed(spec, arg);
  if (backend == "baseline") return parse_baseline(spec, arg);
  if (backend == "hf" || backend == "bert") return parse_hf(spec, arg, options);
  if (backend == "torchscript") return parse_torchscript(spec, arg, options);
  // A bare folder (optionally followed by ",tokens").
  std::error_code ec;
  if (std::filesystem::is_directory(spec, ec) || std::filesystem::is_directory(spec.substr(0, spec.find(',')), ec))
    return parse_hf(spec, spec, options);
  // Without a colon the user most likely meant a folder: say that it is not there.
  const std::string what = colon == std::string::npos
                               ? fmt::format("no folder \"{}\" exists", spec.substr(0, spec.find(',')))
                               : fmt::format("unknown backend \"{}\"", backend);
  fail("could not parse model spec \"{}\": {}{}; known forms: {}", spec, what,
       did_you_mean(backend, {"precomputed", "baseline", "hf", "torchscript"}), fmt::join(encoder_spec_forms(), "; "));
}

}  // namespace embeval
