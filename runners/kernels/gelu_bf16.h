#pragma once
// bf16(GELU(x)) over rows of fp32: BERT's erf GELU on a bf16 GEMM's fp32
// output before its one rounding, in AVX-512 (avx512_math.h's gelu_erf16,
// a rational erf). PackedLinear runs it in place of oneDNN's GELU post-op
// for bf16 on AMX: that post-op took ~3 ms of the ~20.5 ms bert-base FFN
// (4,096 rows, 2 threads); this pass runs 3.5 G values/s a thread (1.8 ms
// a thread for that FFN's 12.6 M), the fp32 write and read-back take most
// of the rest: the FFN measured 20.0-20.9 ms against 20.0-21.1, alternating
// runs (EMBEVAL_ONEDNN_GELU=1 for the post-op); the bert-base bf16 forward
// (batch 32, alternating processes, four rounds) 443-448 ms (once 518)
// against 459-472. Of the pass's ~25 vector
// operations a value, VDIVPS was not the limit (RCP14 + Newton measured the
// same: 2.6 G/s); VCVTNE2PS2BF16 instead of the integer rounding gave 2.6
// -> 3.5, and x/2 + (x/2) erf as one FMA one operation fewer.
#include <cstdint>

namespace embeval {

// Whether this build and CPU run it: AVX-512 (F, BW, VL, DQ) in a build
// with the AMX kernels (amx_tiles.h's EMBEVAL_AMX_BUILD: x86-64 Linux, GCC
// >= 11). Callers keep oneDNN's post-op elsewhere.
bool gelu_erf_bf16_available();

// y[r * ldy + j] = bf16 bits (nearest even, as c10::BFloat16, except that
// VCVTNE2PS2BF16 flushes results below 1.2e-38 to zero, which AMX's bf16
// products read as zero anyway) of
// x/2 (1 + erf(x / sqrt 2)) at x = x[r * ldx + j], r < rows, j < cols.
// Within vec_math.h's stated bound for its GELU before the rounding
// (tests/test_gelu_bf16.cpp). Fails where unavailable.
void gelu_erf_to_bf16(const float* x, int64_t ldx, int64_t rows, int64_t cols, uint16_t* y, int64_t ldy);

}  // namespace embeval
