#include "runners/checkpoint/checkpoint_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <tuple>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/error.h"
#include "runners/checkpoint/safetensors_reader.h"
#include "runners/checkpoint/torch_zip_reader.h"

namespace embeval {
namespace fs = std::filesystem;
namespace {

at::ScalarType scalar_type(TensorDtype d) {
  switch (d) {
    case TENSOR_DTYPE_F16: return at::kHalf;
    case TENSOR_DTYPE_BF16: return at::kBFloat16;
    default: return at::kFloat;
  }
}

std::optional<at::ScalarType> integer_type(TensorDtype d) {
  switch (d) {
    case TENSOR_DTYPE_I64: return at::kLong;
    case TENSOR_DTYPE_I32: return at::kInt;
    case TENSOR_DTYPE_I16: return at::kShort;
    case TENSOR_DTYPE_I8: return at::kChar;
    case TENSOR_DTYPE_U8: return at::kByte;
    default: return std::nullopt;  // U16 / U32 / U64 have no ATen type in libtorch 1.13; bool is no weight
  }
}

void add_tensor(StateDict* out, const std::string& name, at::Tensor t, const fs::path& file) {
  auto [it, inserted] = out->origin.emplace(name, file);
  if (!inserted)
    fail("{}: tensor \"{}\" is also in {}; a checkpoint must hold each tensor once", file.string(), name,
         it->second.string());
  out->tensors.emplace(name, std::move(t));
}

void skip_tensor(StateDict* out, const std::string& name, const std::string& dtype, const fs::path& file) {
  out->skipped[name] = dtype;
  out->origin.emplace(name, file);
}

void load_safetensors(const fs::path& file, StateDict* out) {
  SafetensorsFile f(file);
  for (const auto& e : f.entries()) {
    // Integer and bool tensors are buffers (position_ids), not weights; F64
    // is an error only if the model needs the tensor.
    if (e.dtype != TENSOR_DTYPE_F32 && e.dtype != TENSOR_DTYPE_F16 && e.dtype != TENSOR_DTYPE_BF16) {
      skip_tensor(out, e.name, tensor_dtype_name(e.dtype), file);
      if (const auto st = integer_type(e.dtype)) {
        at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(*st));
        if (e.nbytes) std::memcpy(t.data_ptr(), e.data, e.nbytes);
        out->integers[e.name] = std::move(t);
      }
      continue;
    }
    // Copy out of the mapping: the data is not aligned in general and the
    // mapping dies with `f`.
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(scalar_type(e.dtype)));
    if (e.nbytes) std::memcpy(t.data_ptr(), e.data, e.nbytes);
    add_tensor(out, e.name, std::move(t), file);
  }
}

void load_torch_zip(const fs::path& file, StateDict* out) {
  const std::string where = file.string();
  char magic[4] = {0, 0, 0, 0};
  std::ifstream(file, std::ios::binary).read(magic, 4);
  // torch.save's zip format starts with a local file header "PK\3\4"; the
  // pre-1.6 format is a bare pickle stream with tensors appended.
  if (std::memcmp(magic, "PK\x03\x04", 4) != 0)
    fail("{}: not a torch.save zip archive (the pre-1.6 legacy format is not supported); re-save it with "
         "torch.save(state_dict, path) or convert it to safetensors",
         where);
  read_torch_zip_state_dict(file, [&](const std::string& name, at::Tensor t) {
    // Integer buffers (position_ids) are not weights; float64 is an error
    // only if the model needs the tensor.
    if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kHalf && t.scalar_type() != at::kBFloat16) {
      skip_tensor(out, name, c10::toString(t.scalar_type()), file);
      if (at::isIntegralType(t.scalar_type(), /*includeBool=*/false)) out->integers[name] = std::move(t);
      return;
    }
    add_tensor(out, name, std::move(t), file);
  });
}

// A sharded checkpoint: {"weight_map": {"tensor": "shard file"}}.
void load_index(const fs::path& index, StateDict* out) {
  const std::string where = index.string();
  nlohmann::json j;
  try {
    std::ifstream in(index);
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    std::string msg = e.what();
    fail("{}: not valid JSON ({})", where, msg.substr(0, msg.find('\n')));
  }
  auto wm = j.find("weight_map");
  if (!j.is_object() || wm == j.end() || !wm->is_object() || wm->empty())
    fail("{}: missing \"weight_map\" object of tensor -> shard file", where);
  std::set<std::string> shards;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) fail("{}: weight_map[\"{}\"] must be a file name", where, it.key());
    std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
      fail("{}: weight_map[\"{}\"] = \"{}\" must be a file in the same folder", where, it.key(), shard);
    shards.insert(shard);
  }
  for (const auto& shard : shards) {
    fs::path file = index.parent_path() / shard;
    if (!fs::exists(file)) fail("{}: shard \"{}\" listed in the index does not exist", where, shard);
    load_weight_file(file, out);
  }
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    auto o = out->origin.find(it.key());
    if (o == out->origin.end() || o->second.filename() != it.value().get<std::string>())
      fail("{}: tensor \"{}\" is not in its shard {}", where, it.key(), it.value().get<std::string>());
  }
  out->format += fmt::format(", {} shards", shards.size());
}

const char* const WEIGHT_NAMES[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                    "pytorch_model.bin.index.json"};

}  // namespace

void load_weight_file(const fs::path& file, StateDict* out) {
  if (file.extension() == ".safetensors")
    load_safetensors(file, out);
  else
    load_torch_zip(file, out);
  out->files.push_back(file);
}

// AutoGPTQ saves <model_file_base_name or gptq_model-{bits}bit-{group}g>.safetensors.
static std::optional<fs::path> autogptq_weight_file(const fs::path& dir) {
  try {
    std::ifstream in(dir / "quantize_config.json");
    if (in) {
      const nlohmann::json j = nlohmann::json::parse(in);
      auto base = j.find("model_file_base_name");
      if (base != j.end() && base->is_string()) {
        const fs::path p = dir / (base->get<std::string>() + ".safetensors");
        if (fs::exists(p)) return p;
      }
    }
  } catch (const nlohmann::json::exception&) {
    // The quantization reader reports a malformed quantize_config.json.
  }
  std::optional<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("gptq_model-", 0) == 0 && e.path().extension() == ".safetensors") {
      if (found) fail("{}: two AutoGPTQ weight files ({} and {}); keep one", dir.string(), found->filename().string(), f);
      found = e.path();
    }
  }
  return found;
}

std::vector<fs::path> checkpoint_weight_files(const fs::path& dir) {
  if (std::none_of(std::begin(WEIGHT_NAMES), std::end(WEIGHT_NAMES), [&](const char* n) { return fs::exists(dir / n); }))
    if (auto p = autogptq_weight_file(dir)) return {*p};
  for (const char* name : WEIGHT_NAMES) {
    fs::path p = dir / name;
    if (!fs::exists(p)) continue;
    if (fs::path(name).extension() != ".json") return {p};
    std::vector<fs::path> files{p};
    try {
      std::ifstream in(p);
      nlohmann::json j = nlohmann::json::parse(in);
      std::set<std::string> shards;
      for (const auto& v : j.at("weight_map")) shards.insert(v.get<std::string>());
      for (const auto& s : shards) files.push_back(dir / s);
    } catch (const nlohmann::json::exception&) {
      // load_state_dict reports the malformed index with its reason.
    }
    return files;
  }
  return {};
}

StateDict load_state_dict(const fs::path& dir) {
  StateDict out;
  for (const char* name : WEIGHT_NAMES) {
    fs::path p = dir / name;
    if (!fs::exists(p)) continue;
    if (p.extension() == ".json") {
      out.format = std::string(name).find("safetensors") != std::string::npos ? "safetensors" : "pytorch_model.bin";
      load_index(p, &out);
    } else {
      out.format = p.extension() == ".safetensors" ? "safetensors" : "pytorch_model.bin";
      load_weight_file(p, &out);
    }
    return out;
  }
  if (auto p = autogptq_weight_file(dir)) {
    out.format = "safetensors (AutoGPTQ's file name)";
    load_weight_file(*p, &out);
    return out;
  }
  fail("{}: no weights; expected one of model.safetensors, model.safetensors.index.json, pytorch_model.bin, "
       "pytorch_model.bin.index.json",
       dir.string());
}

void require_finite(const at::Tensor& t, const std::string& file, const std::string& name) {
  if (!t.is_floating_point() || t.numel() == 0) return;
  // The least and greatest element: NaN propagates into them and an
  // infinity is one of them. One pass with no mask tensor, 15x faster than
  // isfinite().all() on bert-base's weights (18 against 265 ms, 2 threads).
  // libtorch 1.13 has no CPU aminmax for fp16: those are widened first.
  const at::Tensor v = t.scalar_type() == at::kHalf && t.device().is_cpu() ? t.to(at::kFloat) : t;
  const std::tuple<at::Tensor, at::Tensor> range = at::aminmax(v);
  if (!std::isfinite(std::get<0>(range).item<double>()) || !std::isfinite(std::get<1>(range).item<double>()))
    fail("{}: tensor \"{}\" has NaN or infinite values", file, name);
}

const at::Tensor& required_tensor(const StateDict& weights, const std::string& name, const std::string& where,
                                  const std::string& alt) {
  for (const std::string* n : {&name, &alt}) {
    if (n->empty()) continue;
    auto it = weights.tensors.find(*n);
    if (it != weights.tensors.end()) return it->second;
  }
  for (const std::string* n : {&name, &alt}) {
    if (n->empty()) continue;
    auto skipped = weights.skipped.find(*n);
    if (skipped == weights.skipped.end()) continue;
    auto origin = weights.origin.find(*n);
    fail("{}: tensor \"{}\" has dtype {}; embeval reads weights in F32, F16 and BF16",
         origin != weights.origin.end() ? origin->second.string() : where, *n, skipped->second);
  }
  fail("{}: missing tensor \"{}\"", where, name);
}

}  // namespace embeval
