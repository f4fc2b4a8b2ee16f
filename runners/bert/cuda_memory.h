#pragma once
// CUDA allocator statistics (torch.cuda.max_memory_allocated and
// reset_peak_memory_stats) for the run record. They need c10_cuda, which
// only a CUDA libtorch has: built against a CPU libtorch these report -1.
#include <cstdint>

namespace embeval {

// Peak bytes allocated by libtorch's caching allocator on CUDA device
// `index` since the last reset; -1 when unavailable.
int64_t cuda_peak_allocated_bytes(int index);
void cuda_reset_peak_allocated_bytes(int index);

}  // namespace embeval
