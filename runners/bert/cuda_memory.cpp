#include "runners/bert/cuda_memory.h"

#ifdef EMBEVAL_HAVE_C10_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace embeval {

#ifdef EMBEVAL_HAVE_C10_CUDA
int64_t cuda_peak_allocated_bytes(int index) {
  namespace alloc = c10::cuda::CUDACachingAllocator;
  const auto stats = alloc::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  return stats.allocated_bytes[0].peak;  // [0]: the aggregate over small and large pools
}

void cuda_reset_peak_allocated_bytes(int index) {
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(index));
}
#else
int64_t cuda_peak_allocated_bytes(int) { return -1; }
void cuda_reset_peak_allocated_bytes(int) {}
#endif

}  // namespace embeval
