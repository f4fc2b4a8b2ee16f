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
