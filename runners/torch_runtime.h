#pragma once
// The libtorch runtime as the harness sees it: version, intra-op threads,
// accelerators. Kept here so that only runners/ (and tasks' kernels) touch torch.
#include <string>

namespace embeval {

std::string libtorch_version();
int torch_threads();
// Sets libtorch's intra-op thread count; n <= 0 keeps the default.
void set_torch_threads(int n);
// "none", or the CUDA devices libtorch can see.
std::string accelerator_description();

}  // namespace embeval
