#pragma once
// The libtorch runtime as the harness sees it: version, intra-op threads,
// accelerators. Kept here so that only runners/ (and tasks' kernels) touch torch.
#include <string>

namespace embeval {

std::string libtorch_version();
int torch_threads();
// Sets libtorch's intra-op thread count (OpenMP, which oneDNN follows too);
// n <= 0 means every CPU this process may run on. libtorch's own default
// counts physical cores through cpuinfo and can say 1 on a VM whose 2 vCPUs
// it takes for hyper-threads of one core (measured here: 1 of 2 in use).
void set_torch_threads(int n);
// Distinct threads an at::parallel_for compiled into embeval's own code runs
// its chunks on (at most torch_threads()). It is a header template whose
// OpenMP body exists only when the caller is built with -fopenmp; built
// without, it is 1 whatever torch_threads() says (every embeval loop was, up
// to session 14).
int parallel_for_threads();
// CPUs in this process's affinity mask (what taskset / cgroups allow).
int available_cpus();
// "none", or the CUDA devices libtorch can see.
std::string accelerator_description();
// Call once at start-up, before large allocations. glibc serves blocks above
// its mmap threshold (at most 32 MB by default) with fresh mmap()s and
// unmaps them on free, so every new activation of a large batch page-faults
// again (measured: Linear at 45 instead of 98 GFLOP/s). Raising the mmap and
// trim thresholds to 1 GB keeps freed blocks in the heap for reuse.
void tune_malloc_for_inference();

}  // namespace embeval
