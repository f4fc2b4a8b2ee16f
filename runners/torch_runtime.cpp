#include "runners/torch_runtime.h"

#include <malloc.h>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <fmt/format.h>

namespace embeval {

std::string libtorch_version() { return TORCH_VERSION; }

int torch_threads() { return at::get_num_threads(); }

void set_torch_threads(int n) {
  if (n > 0) at::set_num_threads(n);
}

void tune_malloc_for_inference() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

std::string accelerator_description() {
  if (!at::hasCUDA()) return "none";
  return fmt::format("cuda x{}", at::getNumGPUs());
}

}  // namespace embeval
