#pragma once
// EMBEVAL_CLONES before a function compiles it for the x86-64 levels v4
// (AVX-512 F/BW/DQ/VL), v3 (AVX2 + FMA) and plain x86-64, and the loader
// picks the version the CPU runs (GCC function multi-versioning; "avx2"
// alone would leave out FMA). The element loops of the quantized kernels use it: the
// build targets baseline x86-64, so without it they get SSE2 at best.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EMBEVAL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EMBEVAL_CLONES
#endif

#include <cstdlib>
#include <cstring>

namespace embeval {
// Whether the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16), so
// a bf16 GEMM beats the fp32 one. EMBEVAL_NO_NATIVE_BF16=1 in the
// environment says no (to test and time the other path on such a CPU).
inline bool cpu_has_native_bf16() {
  const char* off = std::getenv("EMBEVAL_NO_NATIVE_BF16");
  if (off && *off && std::strcmp(off, "0") != 0) return false;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return false;
#endif
}
}  // namespace embeval
