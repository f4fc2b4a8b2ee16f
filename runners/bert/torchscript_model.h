#pragma once
// A TorchScript module exported with torch.jit.trace / torch.jit.script,
// called as module(input_ids, attention_mask) with int64 [batch, seq]
// tensors. It may return sentence vectors [batch, dim] (the export includes
// pooling), token states [batch, seq, hidden] (the folder's pooling runs
// after it), or a tuple / list / dict holding one of those first (or under
// "sentence_embedding" / "last_hidden_state", as transformers' outputs do).
// Errors from loading or running it are one-line UserErrors naming the file.
#include <cstdint>
#include <filesystem>
#include <memory>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace embeval {

class TorchScriptModel {
 public:
  // Loads the module onto `device` and casts its floating-point parameters to `dtype`.
  TorchScriptModel(const std::filesystem::path& file, c10::Device device, at::ScalarType dtype);
  ~TorchScriptModel();

  // Returns the module's output tensor (rank 2 or 3), floating point.
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) const;
  const std::filesystem::path& file() const;
  int64_t n_parameters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embeval
