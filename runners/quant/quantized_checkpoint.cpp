#include "runners/quant/quantized_checkpoint.h"

#include <algorithm>
#include <fstream>
#include <set>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "harness/error.h"
#include "runners/checkpoint/safetensors_reader.h"
#include "runners/kernels/weight_only_linear.h"
#include "runners/quant/awq_format.h"
#include "runners/quant/gptq_format.h"
#include "runners/quant/quantize_model.h"

namespace embeval {
namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

namespace {

// Files of a transformer folder that describe its weights: replaced, not copied.
const char* const WEIGHT_CONFIGS[] = {"quantize_config.json", "quant_config.json", "embeval_quantization.json"};

ordered_json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot read", file.string());
  try {
    return ordered_json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    const std::string msg = e.what();
    fail("{}: not valid JSON ({})", file.string(), msg.substr(0, msg.find('\n')));
  }
}

void write_json(const fs::path& file, const ordered_json& j) {
  std::ofstream out(file);
  out << j.dump(2) << '\n';
  if (!out) fail("{}: cannot write", file.string());
}

enum class Layout { gptq, awq, w8a8 };

Layout layout_of(const QuantSpec& spec) {
  if (spec.act_bits == 8) return Layout::w8a8;
  return spec.method == QuantMethod::awq ? Layout::awq : Layout::gptq;
}

// A CPU tensor as safetensors bytes (little-endian, as x86 and ARM hold them).
SafetensorsTensor to_safetensors(const std::string& name, const at::Tensor& t) {
  TensorDtype d;
  switch (t.scalar_type()) {
    case at::kFloat: d = TENSOR_DTYPE_F32; break;
    case at::kHalf: d = TENSOR_DTYPE_F16; break;
    case at::kBFloat16: d = TENSOR_DTYPE_BF16; break;
    case at::kLong: d = TENSOR_DTYPE_I64; break;
    case at::kInt: d = TENSOR_DTYPE_I32; break;
    case at::kShort: d = TENSOR_DTYPE_I16; break;
    case at::kChar: d = TENSOR_DTYPE_I8; break;
    case at::kByte: d = TENSOR_DTYPE_U8; break;
    default: fail("tensor \"{}\" is {}; safetensors output takes float and integer tensors", name, c10::toString(t.scalar_type()));
  }
  const at::Tensor c = t.cpu().contiguous();
  return {name, d, c.sizes().vec(),
          std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * c.element_size())};
}

bool is_inside(const fs::path& path, const fs::path& dir) {
  const fs::path rel = path.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != "..";
}

}  // namespace

void save_quantized_checkpoint(const fs::path& source_in, const fs::path& out_in, const StateDict& weights,
                               const std::vector<QuantizedLinear>& linears, const QuantSpec& spec,
                               const QuantizationProvenance& provenance) {
  if (weights.files.empty() || linears.empty()) fail("{}: nothing quantized to save", out_in.string());
  const fs::path source = fs::weakly_canonical(source_in);
  const fs::path out = fs::weakly_canonical(out_in);
  if (fs::exists(out)) fail("{}: already exists; give a new folder for the quantized checkpoint", out_in.string());
  if (is_inside(out, source) || out == source)
    fail("{}: inside the checkpoint folder {}; write the quantized checkpoint elsewhere", out_in.string(),
         source_in.string());
  const fs::path tdir = fs::weakly_canonical(weights.files.front().parent_path());
  if (tdir != source && !is_inside(tdir, source))
    fail("{}: the weights were read from {}, outside the checkpoint folder", source_in.string(), tdir.string());
  const fs::path rel = tdir == source ? fs::path() : tdir.lexically_relative(source);
  std::set<fs::path> skip;
  // Entries are compared by their path under the folder, never resolved:
  // a Hugging Face cache snapshot holds its files as symlinks into ../blobs.
  for (const fs::path& f : checkpoint_weight_files(tdir)) skip.insert(tdir / f.filename());
  for (const fs::path& f : weights.files) skip.insert(tdir / f.filename());
  for (const char* n : WEIGHT_CONFIGS) skip.insert(tdir / n);
  skip.insert(tdir / "config.json");  // rewritten below
  // Every other weight file of the transformer folder too (a checkpoint often
  // holds both model.safetensors and pytorch_model.bin, or shards of both):
  // the float weights must not ride along in the quantized folder.
  auto weight_file = [&](const fs::path& p) {
    if (p.parent_path() != tdir) return false;
    const std::string name = p.filename().string(), ext = p.extension().string();
    return ext == ".safetensors" || ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".h5" ||
           ext == ".msgpack" || (name.size() > 11 && name.compare(name.size() - 11, 11, ".index.json") == 0);
  };

  const fs::path tmp = out.parent_path() / (out.filename().string() + ".tmp-embeval");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  for (const auto& e : fs::recursive_directory_iterator(source)) {
    const fs::path& p = e.path();  // under `source`; a symlink is copied as the file it points to
    const fs::path target = tmp / p.lexically_relative(source);
    if (e.is_directory()) {
      fs::create_directories(target);
    } else if (e.is_regular_file() && !skip.count(p) && !weight_file(p)) {
      fs::create_directories(target.parent_path());
      fs::copy_file(p, target);
    }
  }

  // Tensors: everything the checkpoint had but the quantized layers' float
  // weights and biases, then each quantized layer in its layout.
  std::set<std::string> replaced;
  for (const QuantizedLinear& l : linears) replaced.insert({l.name + ".weight", l.name + ".bias"});
  std::vector<SafetensorsTensor> tensors;
  for (const auto& [name, t] : weights.tensors)
    if (!replaced.count(name)) tensors.push_back(to_safetensors(name, t));
  for (const auto& [name, t] : weights.integers)
    if (!replaced.count(name)) tensors.push_back(to_safetensors(name, t));
  const Layout layout = layout_of(spec);
  bool zero_zero = false;  // a zero of 0 needs gptq_v2
  for (const QuantizedLinear& l : linears) zero_zero |= (l.weight.zeros == 0).any().item<bool>();
  const GptqFormat gptq_format = zero_zero ? GptqFormat::v2 : GptqFormat::v1;
  for (const QuantizedLinear& l : linears) {
    switch (layout) {
      case Layout::gptq: {
        GptqTensors g = pack_gptq(l.weight, gptq_format, l.name);
        tensors.push_back(to_safetensors(l.name + ".qweight", g.qweight));
        tensors.push_back(to_safetensors(l.name + ".qzeros", g.qzeros));
        tensors.push_back(to_safetensors(l.name + ".scales", g.scales));
        tensors.push_back(to_safetensors(l.name + ".g_idx", g.g_idx));
        break;
      }
      case Layout::awq: {
        AwqTensors a = pack_awq(l.weight, l.name);
        tensors.push_back(to_safetensors(l.name + ".qweight", a.qweight));
        tensors.push_back(to_safetensors(l.name + ".qzeros", a.qzeros));
        tensors.push_back(to_safetensors(l.name + ".scales", a.scales));
        break;
      }
      case Layout::w8a8:
        tensors.push_back(to_safetensors(l.name + ".weight", (l.weight.codes.to(at::kInt) - 128).to(at::kChar)));
        tensors.push_back(to_safetensors(l.name + ".weight_scale", l.weight.scales.reshape({-1, 1}).to(at::kFloat)));
        break;
    }
    if (l.bias.defined()) tensors.push_back(to_safetensors(l.name + ".bias", l.bias.to(at::kFloat)));
    if (l.input_divisor.defined()) tensors.push_back(to_safetensors(l.name + ".input_divisor", l.input_divisor.to(at::kFloat)));
  }
  write_safetensors(tmp / rel / "model.safetensors", tensors, {{"format", "pt"}});

  // Configuration.
  ordered_json config = read_json(tdir / "config.json");
  ordered_json q;
  std::string layout_name;
  const int64_t gs = spec.group_size > 0 ? spec.group_size : -1;
  switch (layout) {
    case Layout::gptq:
      q = {{"quant_method", "gptq"},
           {"bits", spec.weight_bits},
           {"group_size", gs},
           {"damp_percent", 0.01},
           {"desc_act", spec.act_order},
           {"static_groups", false},
           {"sym", spec.symmetric},
           {"true_sequential", true},
           {"model_file_base_name", "model"},
           {"checkpoint_format", gptq_format == GptqFormat::v1 ? "gptq" : "gptq_v2"}};
      layout_name = fmt::format("AutoGPTQ {}", gptq_format == GptqFormat::v1 ? "gptq" : "gptq_v2");
      write_json(tmp / rel / "quantize_config.json", q);
      break;
    case Layout::awq:
      q = {{"quant_method", "awq"}, {"zero_point", true},      {"group_size", gs},
           {"bits", 4},             {"version", "gemm"},       {"modules_to_not_convert", nullptr}};
      layout_name = "AutoAWQ GEMM";
      break;
    case Layout::w8a8:
      q = {{"quant_method", "embeval-w8a8"},
           {"weights", "int8, symmetric, per output channel"},
           {"activations", "int8, symmetric, per token, dynamic"}};
      layout_name = "embeval W8A8";
      break;
  }
  config["quantization_config"] = q;
  write_json(tmp / rel / "config.json", config);
  ordered_json info = {{"method", spec.name()},
                       {"layout", layout_name},
                       {"calibration", provenance.calibration},
                       {"quantize_seconds", provenance.seconds},
                       {"quantized_by", provenance.tool},
                       {"source", source.string()}};
  write_json(tmp / rel / "embeval_quantization.json", info);
  fs::rename(tmp, out);
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A setting of a quantization config under any of its names (AutoAWQ's
// quant_config.json says w_bit and q_group_size); null when absent. Strings
// compare without case: AutoAWQ writes version "GEMM" there and "gemm" in
// config.json.
ordered_json setting(const ordered_json& j, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    auto it = j.find(n);
    if (it == j.end() || it->is_null()) continue;
    return it->is_string() ? ordered_json(lower(it->get<std::string>())) : *it;
  }
  return nullptr;
}

// The quantization config of a transformer folder and the file it is in:
// config.json's quantization_config (what transformers reads), else
// quantize_config.json (AutoGPTQ) or quant_config.json (AutoAWQ). Where a
// folder has both, each setting the two share must agree: AutoGPTQ and
// transformers would otherwise read different models from the same files.
std::optional<std::pair<ordered_json, fs::path>> find_config(const fs::path& dir) {
  std::optional<std::pair<ordered_json, fs::path>> hf;
  const fs::path config = dir / "config.json";
  if (fs::exists(config)) {
    ordered_json c = read_json(config);
    auto q = c.find("quantization_config");
    if (q != c.end() && !q->is_null()) {
      if (!q->is_object()) fail("{}: quantization_config must be an object", config.string());
      hf = std::make_pair(*q, config);
    }
  }
  for (const char* name : {"quantize_config.json", "quant_config.json"}) {
    if (!fs::exists(dir / name)) continue;
    ordered_json own = read_json(dir / name);
    if (!hf) return std::make_pair(own, dir / name);
    if (!own.is_object()) fail("{}: expected a JSON object", (dir / name).string());
    const std::initializer_list<const char*> shared[] = {
        {"quant_method"}, {"bits", "w_bit"}, {"group_size", "q_group_size"}, {"desc_act"}, {"sym"},
        {"zero_point"}, {"version"}, {"checkpoint_format"}};
    for (const auto& names : shared) {
      const ordered_json a = setting(own, names), b = setting(hf->first, names);
      if (!a.is_null() && !b.is_null() && a != b)
        fail("{}: {} {} disagrees with config.json's quantization_config ({}); AutoGPTQ / AutoAWQ and transformers "
             "would read different models",
             (dir / name).string(), *names.begin(), a.dump(), b.dump());
    }
  }
  return hf;
}

template <typename T>
T field(const ordered_json& j, std::initializer_list<const char*> names, T fallback, const fs::path& file) {
  for (const char* n : names) {
    auto it = j.find(n);
    if (it == j.end() || it->is_null()) continue;
    try {
      return it->get<T>();
    } catch (const nlohmann::json::exception&) {
      fail("{}: quantization field \"{}\" has the wrong type ({})", file.string(), n, it->dump());
    }
  }
  return fallback;
}

at::Tensor take(const StateDict& w, const std::string& name, bool integer) {
  const auto& m = integer ? w.integers : w.tensors;
  auto it = m.find(name);
  return it == m.end() ? at::Tensor() : it->second;
}

std::string origin_of(const StateDict& w, const std::string& name, const fs::path& dir) {
  auto it = w.origin.find(name);
  return it == w.origin.end() ? dir.string() : it->second.string();
}

}  // namespace

std::optional<fs::path> quantization_config_file(const fs::path& dir) {
  const auto found = find_config(dir);
  return found ? std::optional<fs::path>(found->second) : std::nullopt;
}

std::optional<LoadedQuantization> read_quantized_checkpoint(const fs::path& dir, StateDict& weights) {
  auto found = find_config(dir);
  std::vector<std::string> packed;  // layers with packed tensors
  for (const auto& [name, t] : weights.integers) {
    const std::string suffix = ".qweight";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      packed.push_back(name.substr(0, name.size() - suffix.size()));
  }
  if (!found) {
    if (!packed.empty())
      fail("{}: tensor \"{}.qweight\" is packed but the folder has no quantization config (config.json "
           "quantization_config, quantize_config.json or quant_config.json)",
           origin_of(weights, packed.front() + ".qweight", dir), packed.front());
    return std::nullopt;
  }
  const auto& [cfg, file] = *found;
  const std::string method = lower(field<std::string>(cfg, {"quant_method", "method"}, "", file));
  LoadedQuantization r;
  if (method == "gptq" || (method.empty() && cfg.contains("desc_act"))) {
    const int bits = field<int>(cfg, {"bits"}, 4, file);
    const int64_t gs = field<int64_t>(cfg, {"group_size"}, -1, file);
    const bool sym = field<bool>(cfg, {"sym"}, true, file);
    const bool act_order = field<bool>(cfg, {"desc_act"}, false, file);
    const std::string fmt_name = lower(field<std::string>(cfg, {"checkpoint_format", "format"}, "gptq", file));
    if (fmt_name != "gptq" && fmt_name != "gptq_v2")
      fail("{}: checkpoint_format \"{}\" is not a layout embeval reads (it reads gptq and gptq_v2)", file.string(),
           fmt_name);
    if (bits != 4 && bits != 8)
      fail("{}: {}-bit GPTQ; embeval's kernels run 4- and 8-bit weights", file.string(), bits);
    if (gs != -1 && gs <= 0) fail("{}: group_size {} (expected -1 or a positive size)", file.string(), gs);
    const GptqFormat f = fmt_name == "gptq" ? GptqFormat::v1 : GptqFormat::v2;
    for (const std::string& name : packed) {
      GptqTensors t{take(weights, name + ".qweight", true), take(weights, name + ".qzeros", true),
                    take(weights, name + ".scales", false), take(weights, name + ".g_idx", true)};
      QuantizedLinear l;
      l.name = name;
      try {
        l.weight = unpack_gptq(t, bits, gs, sym, f, name);
      } catch (const UserError& e) {
        fail("{}: {}", origin_of(weights, name + ".qweight", dir), e.what());
      }
      r.linears.emplace(name, std::move(l));
    }
    QuantSpec s;
    s.method = QuantMethod::gptq;
    s.weight_bits = bits;
    s.group_size = gs > 0 ? gs : 0;
    s.symmetric = false;
    s.act_order = act_order;
    r.method = s.name();
    r.layout = fmt::format("AutoGPTQ {}{}, {}", fmt_name, sym ? ", symmetric" : "", file.filename().string());
  } else if (method == "awq" || (method.empty() && (cfg.contains("w_bit") || cfg.contains("q_group_size")))) {
    const int bits = field<int>(cfg, {"bits", "w_bit"}, 4, file);
    const int64_t gs = field<int64_t>(cfg, {"group_size", "q_group_size"}, 128, file);
    const bool zero_point = field<bool>(cfg, {"zero_point"}, true, file);
    const std::string version = lower(field<std::string>(cfg, {"version"}, "gemm", file));
    if (version != "gemm")
      fail("{}: AWQ version \"{}\" is not a layout embeval reads (it reads AutoAWQ's GEMM packing)", file.string(),
           version);
    if (bits != 4) fail("{}: {}-bit AWQ; AutoAWQ's GEMM layout is 4-bit", file.string(), bits);
    if (!zero_point) fail("{}: AWQ without zero points is not a layout embeval reads", file.string());
    for (const std::string& name : packed) {
      AwqTensors t{take(weights, name + ".qweight", true), take(weights, name + ".qzeros", true),
                   take(weights, name + ".scales", false)};
      QuantizedLinear l;
      l.name = name;
      try {
        l.weight = unpack_awq(t, gs, name);
      } catch (const UserError& e) {
        fail("{}: {}", origin_of(weights, name + ".qweight", dir), e.what());
      }
      r.linears.emplace(name, std::move(l));
    }
    QuantSpec s;
    s.method = QuantMethod::awq;
    s.weight_bits = 4;
    s.group_size = gs > 0 ? gs : 0;
    s.symmetric = false;
    r.method = s.name();
    r.layout = fmt::format("AutoAWQ GEMM, {}", file.filename().string());
  } else if (method == "embeval-w8a8") {
    if (!packed.empty())
      fail("{}: \"{}.qweight\" in an embeval-w8a8 checkpoint (its layers hold int8 .weight and .weight_scale)",
           origin_of(weights, packed.front() + ".qweight", dir), packed.front());
    const std::string suffix = ".weight_scale";
    for (const auto& [tname, scale] : weights.tensors) {
      if (tname.size() <= suffix.size() || tname.compare(tname.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      const std::string name = tname.substr(0, tname.size() - suffix.size());
      const at::Tensor w = take(weights, name + ".weight", true);
      const std::string where = origin_of(weights, tname, dir);
      if (!w.defined() || w.scalar_type() != at::kChar || w.dim() != 2)
        fail("{}: {}.weight must be int8 [out, in] beside its weight_scale", where, name);
      if (scale.numel() != w.size(0))
        fail("{}: {}.weight_scale has {} values for {} output channels", where, name, scale.numel(), w.size(0));
      QuantizedLinear l;
      l.name = name;
      l.int8_activations = true;
      l.weight.bits = 8;
      l.weight.symmetric = true;
      l.weight.codes = (w.to(at::kInt) + 128).to(at::kByte);
      l.weight.scales = scale.reshape({-1, 1}).to(at::kFloat).contiguous();
      if (!(l.weight.scales > 0).all().item<bool>() || !at::isfinite(l.weight.scales).all().item<bool>())
        fail("{}: {}.weight_scale must be positive and finite", where, name);
      l.weight.zeros = at::full({w.size(0), 1}, 128, at::kInt);
      r.linears.emplace(name, std::move(l));
    }
    if (r.linears.empty()) fail("{}: quant_method embeval-w8a8 but no tensor ends in .weight_scale", file.string());
    r.method = "w8a8";
    r.layout = "embeval W8A8";
  } else {
    fail("{}: quant_method \"{}\" is not a layout embeval reads (it reads gptq, awq and embeval-w8a8)", file.string(),
         method);
  }
  if (r.linears.empty()) fail("{}: quant_method {} but no tensor ends in .qweight", file.string(), method);

  // The method's own name when embeval wrote the checkpoint.
  if (fs::exists(dir / "embeval_quantization.json")) {
    const ordered_json info = read_json(dir / "embeval_quantization.json");
    const std::string m = field<std::string>(info, {"method"}, "", dir / "embeval_quantization.json");
    if (!m.empty()) r.method = parse_quant_spec(m).name();
  }
  // Divisors, biases, and the dequantized weights the model is built from.
  for (auto& [name, l] : r.linears) {
    const at::Tensor d = take(weights, name + ".input_divisor", false);
    if (d.defined()) {
      if (d.dim() != 1 || d.size(0) != l.weight.in_features() || !(d > 0).all().item<bool>() ||
          !at::isfinite(d).all().item<bool>())
        fail("{}: {}.input_divisor must be positive and finite, [in = {}]", origin_of(weights, name + ".input_divisor", dir),
             name, l.weight.in_features());
      l.input_divisor = d.to(at::kFloat).contiguous();
    }
    const at::Tensor b = take(weights, name + ".bias", false);
    if (b.defined()) {
      if (b.dim() != 1 || b.size(0) != l.weight.out_features())
        fail("{}: {}.bias has {} values for {} output channels", origin_of(weights, name + ".bias", dir), name,
             b.numel(), l.weight.out_features());
      l.bias = b.to(at::kFloat).contiguous();
    }
    const std::string w = name + (l.int8_activations ? ".weight" : ".qweight");
    weights.tensors[name + ".weight"] = l.weight.dequantize();
    weights.origin[name + ".weight"] = origin_of(weights, w, dir);
  }
  return r;
}

std::string install_quantized_checkpoint(BertModel& model, const StateDict& weights, const LoadedQuantization& q,
                                         const std::string& where) {
  const bool bf16 = model.dtype() == at::kBFloat16;
  const bool cpu = model.device().is_cpu();
  if (cpu && model.dtype() != at::kFloat && !bf16)
    fail("{}: a {} checkpoint runs its quantized kernels on the CPU in fp32 or bf16, not {}; drop --dtype (or use "
         "fp32 or bf16)",
         where, q.method, c10::toString(model.dtype()));
  std::set<std::string> used;
  std::string kernel;
  int64_t n = 0;
  for (int64_t i = 0; i < model.config().num_hidden_layers; ++i)
    for (LinearSlot slot : LINEAR_SLOTS) {
      const std::vector<std::string> names = model.linear_names(i, slot);
      std::vector<const QuantizedLinear*> parts;
      for (const std::string& name : names) {
        auto it = q.linears.find(name);
        if (it != q.linears.end()) parts.push_back(&it->second), used.insert(name);
      }
      if (parts.empty()) continue;
      if (parts.size() != names.size())
        fail("{}: {} is quantized but not all of {}; embeval runs them as one Linear", where, parts.front()->name,
             fmt::join(names, ", "));
      const QuantizedLinear& first = *parts.front();
      QuantizedLinear fused = first;
      if (parts.size() > 1) {
        std::vector<at::Tensor> codes, scales, zeros, bias;
        for (const QuantizedLinear* p : parts) {
          const QuantizedWeight& a = first.weight;
          const QuantizedWeight& b = p->weight;
          const bool same_g = a.g_idx.defined() == b.g_idx.defined() && (!a.g_idx.defined() || a.g_idx.equal(b.g_idx));
          const bool same_d = first.input_divisor.defined() == p->input_divisor.defined() &&
                              (!first.input_divisor.defined() || first.input_divisor.equal(p->input_divisor));
          if (a.bits != b.bits || a.groups() != b.groups() || a.group_size != b.group_size || !same_g || !same_d ||
              first.int8_activations != p->int8_activations || first.bias.defined() != p->bias.defined())
            fail("{}: {} and {} are quantized differently (bits, groups, g_idx or input divisor); embeval runs Q, K "
                 "and V as one Linear",
                 where, first.name, p->name);
          codes.push_back(b.codes);
          scales.push_back(b.scales);
          zeros.push_back(b.zeros);
          if (p->bias.defined()) bias.push_back(p->bias);
        }
        fused.weight.codes = at::cat(codes, 0);
        fused.weight.scales = at::cat(scales, 0);
        fused.weight.zeros = at::cat(zeros, 0);
        if (!bias.empty()) fused.bias = at::cat(bias, 0);
      }
      if (!fused.bias.defined()) fused.bias = model.linear_params(weights, i, slot).bias;
      const LinearActivation act = model.linear_params(weights, i, slot).activation;
      std::unique_ptr<Linear> op = quantized_kernel(fused, act, false, model.dtype(), model.device());
      if (kernel.empty()) {
        const auto* wo = bf16 && cpu ? dynamic_cast<const WeightOnlyLinear*>(op.get()) : nullptr;
        kernel = wo ? wo->bf16_implementation() : op->implementation() + (bf16 && cpu ? ", bf16 in and out" : "");
      }
      model.set_linear(i, slot, std::move(op));
      n += static_cast<int64_t>(names.size());
    }
  for (const auto& [name, l] : q.linears)
    if (!used.count(name))
      fail("{}: quantized layer {} is not a Linear of the encoder's layers (embeval quantizes Q, K, V, attention "
           "output, FFN in and out)",
           where, name);
  return fmt::format("{} from the checkpoint ({}): {} Linear layers, kernel {}", q.method, q.layout, n, kernel);
}

}  // namespace embeval
