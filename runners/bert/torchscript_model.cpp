#include "runners/bert/torchscript_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include "harness/error.h"

namespace embeval {
namespace fs = std::filesystem;

namespace {

// The first line of a c10::Error's message (the rest is a C++ / TorchScript backtrace).
std::string first_line(const std::string& what) {
  std::string line = what.substr(0, what.find('\n'));
  return line.empty() ? "unknown error" : line;
}

}  // namespace

struct TorchScriptModel::Impl {
  fs::path file;
  mutable torch::jit::Module module;  // forward() is not const in the jit API
  int64_t n_parameters = 0;
};

TorchScriptModel::TorchScriptModel(const fs::path& file, c10::Device device, at::ScalarType dtype)
    : impl_(std::make_unique<Impl>()) {
  impl_->file = file;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) fail("{}: no such TorchScript file", file.string());
  try {
    impl_->module = torch::jit::load(file.string(), device);
    impl_->module.eval();
    impl_->module.to(dtype);
  } catch (const c10::Error& e) {
    fail("{}: not a loadable TorchScript module: {}", file.string(), first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    fail("{}: not a loadable TorchScript module: {}", file.string(), first_line(e.what()));
  }
  if (!impl_->module.find_method("forward")) fail("{}: the module has no forward method", file.string());
  for (const at::Tensor& p : impl_->module.parameters()) impl_->n_parameters += p.numel();
  if (impl_->n_parameters == 0)  // traced modules often hold their weights as attributes / buffers
    for (const at::Tensor& b : impl_->module.buffers()) impl_->n_parameters += b.numel();
}

TorchScriptModel::~TorchScriptModel() = default;

const fs::path& TorchScriptModel::file() const { return impl_->file; }
int64_t TorchScriptModel::n_parameters() const { return impl_->n_parameters; }

at::Tensor TorchScriptModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) const {
  const std::string where = impl_->file.string();
  c10::InferenceMode guard;  // a traced model's parameters require grad; no graph is wanted
  c10::IValue out;
  try {
    out = impl_->module.forward({input_ids, attention_mask});
  } catch (const c10::Error& e) {
    fail("{}: forward(input_ids, attention_mask) failed: {}", where, first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    fail("{}: forward(input_ids, attention_mask) failed: {}", where, first_line(e.what()));
  }
  // Unwrap the containers transformers / sentence-transformers exports return.
  for (int depth = 0; depth < 3 && !out.isTensor(); ++depth) {
    if (out.isTuple() && !out.toTupleRef().elements().empty()) {
      out = out.toTupleRef().elements()[0];
    } else if (out.isList() && out.toListRef().size() > 0) {
      out = out.toListRef()[0];
    } else if (out.isGenericDict()) {
      auto dict = out.toGenericDict();
      c10::IValue picked;
      for (const char* key : {"sentence_embedding", "last_hidden_state", "token_embeddings"}) {
        auto it = dict.find(key);
        if (it != dict.end()) {
          picked = it->value();
          break;
        }
      }
      if (picked.isNone() && dict.size() > 0) picked = dict.begin()->value();
      out = picked;
    } else {
      break;
    }
  }
  if (!out.isTensor()) fail("{}: forward returned {}, not a tensor", where, out.tagKind());
  at::Tensor t = out.toTensor();
  const int64_t b = input_ids.size(0), s = input_ids.size(1);
  const bool ok = t.is_floating_point() &&
                  ((t.dim() == 2 && t.size(0) == b) || (t.dim() == 3 && t.size(0) == b && t.size(1) == s));
  if (!ok)
    fail("{}: forward returned a {} tensor of shape [{}] for input [{}, {}]; expected floating-point [batch, dim] or "
         "[batch, seq, hidden]",
         where, c10::toString(t.scalar_type()), fmt::join(t.sizes(), ", "), b, s);
  return t;
}

}  // namespace embeval
