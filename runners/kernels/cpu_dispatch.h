#pragma once
// EMBEVAL_CLONES before a function compiles it for AVX-512, AVX2 and plain
// x86-64, and the loader picks the version the CPU runs (GCC function
// multi-versioning). The element loops of the quantized kernels use it: the
// build targets baseline x86-64, so without it they get SSE2 at best.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EMBEVAL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EMBEVAL_CLONES
#endif
