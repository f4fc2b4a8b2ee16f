#include "runners/torch_runtime.h"

#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <fmt/format.h>

namespace embeval {

std::string libtorch_version() { return TORCH_VERSION; }

int torch_threads() { return at::get_num_threads(); }

int parallel_for_threads() {
  std::mutex mutex;
  std::set<std::thread::id> seen;
  const int64_t n = std::max(2, torch_threads());
  at::parallel_for(0, n, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.insert(std::this_thread::get_id());
  });
  return static_cast<int>(seen.size());
}

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

void set_torch_threads(int n) { at::set_num_threads(n > 0 ? n : available_cpus()); }

void tune_malloc_for_inference() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

std::string accelerator_description() {
  if (!at::hasCUDA()) return "none";
  return fmt::format("cuda x{}", at::getNumGPUs());
}

}  // namespace embeval
