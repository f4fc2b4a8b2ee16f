#pragma once
// State dicts saved by torch.save (the zip format, PyTorch >= 1.6): data.pkl
// holds a pickle of {name: tensor} whose tensors point at storages stored
// as data/<key> records. libtorch's own unpickler (torch::pickle_load) turns
// the OrderedDict a state_dict is into None before 2.x, so this reads the
// pickle itself: a small stack machine for the opcodes torch.save emits
// (protocol 2), with only the globals a state dict needs
// (collections.OrderedDict, torch._utils._rebuild_tensor_v2 /
// _rebuild_parameter, torch.*Storage). Nothing is executed; an unknown
// opcode or global is a UserError naming the file.
#include <filesystem>
#include <functional>
#include <string>

#include <ATen/core/Tensor.h>

namespace embeval {

// Calls `on_tensor` for each entry of the saved dict, in file order, with a
// contiguous CPU tensor in its stored dtype. Non-tensor values are skipped.
void read_torch_zip_state_dict(const std::filesystem::path& file,
                               const std::function<void(const std::string&, at::Tensor)>& on_tensor);

}  // namespace embeval
