#include "runners/kernels/avx512_row_kernels.h"

#include <cstring>

#ifdef EMBEVAL_AMX_BUILD
#include "runners/kernels/avx512_math.h"
#include "runners/kernels/vnni_asm.h"

namespace embeval {

// Two products of row r's broadcast dword (operand off): with the zmm of
// outputs 0-15 (zmm16) into accumulator b0, with outputs 16-31 (zmm17)
// into b1.
#define EMBEVAL_ROW_PRODUCTS(insn, off, b0, b1) \
  insn " " off "%{1to16%}, %%zmm16, %%zmm" #b0 "\n\t" insn " " off "%{1to16%}, %%zmm17, %%zmm" #b1 "\n\t"
#define EMBEVAL_ROW_STORE(i0, i1) \
  "vmovups %%zmm" #i0 ", (%[o])\n\t" "vmovups %%zmm" #i1 ", 64(%[o])\n\t" "add %[ldo], %[o]\n\t"
// The loop for instruction `insn`: rows 0-7 at a0, a0 + lda, a0 + 2 lda,
// a3 = a0 + 3 lda, a0 + 4 lda, a3 + 2 lda, a6 = a0 + 6 lda, a6 + lda.
#define EMBEVAL_ROWS8_ASM(insn)                                                                              \
  EMBEVAL_ASM_ZERO_0_15                                                                                      \
  "1:\n\t"                                                                                                   \
  "vmovups (%[b]), %%zmm16\n\t" "vmovups (%[b],%[half],1), %%zmm17\n\t"                                      \
  EMBEVAL_ROW_PRODUCTS(insn, "(%[a0])", 0, 1) EMBEVAL_ROW_PRODUCTS(insn, "(%[a0],%[lda],1)", 2, 3)           \
  EMBEVAL_ROW_PRODUCTS(insn, "(%[a0],%[lda],2)", 4, 5) EMBEVAL_ROW_PRODUCTS(insn, "(%[a3])", 6, 7)           \
  EMBEVAL_ROW_PRODUCTS(insn, "(%[a0],%[lda],4)", 8, 9) EMBEVAL_ROW_PRODUCTS(insn, "(%[a3],%[lda],2)", 10, 11) \
  EMBEVAL_ROW_PRODUCTS(insn, "(%[a6])", 12, 13) EMBEVAL_ROW_PRODUCTS(insn, "(%[a6],%[lda],1)", 14, 15)       \
  "add $4, %[a0]\n\t" "add $4, %[a3]\n\t" "add $4, %[a6]\n\t"                                                \
  "add %[ldb], %[b]\n\t"                                                                                     \
  "dec %[n]\n\t"                                                                                             \
  "jnz 1b\n\t"                                                                                               \
  EMBEVAL_ROW_STORE(0, 1) EMBEVAL_ROW_STORE(2, 3) EMBEVAL_ROW_STORE(4, 5) EMBEVAL_ROW_STORE(6, 7)            \
  EMBEVAL_ROW_STORE(8, 9) EMBEVAL_ROW_STORE(10, 11) EMBEVAL_ROW_STORE(12, 13) EMBEVAL_ROW_STORE(14, 15)

namespace {

// The zeros a call with no steps gives.
void zero_rows(float* o, int64_t ldo) {
  for (int r = 0; r < 8; ++r) std::memset(reinterpret_cast<char*>(o) + r * ldo, 0, 32 * sizeof(float));
}

}  // namespace

#define EMBEVAL_ROWS8_BODY(insn)                                                                             \
  if (steps <= 0) return zero_rows(o, ldo);                                                                  \
  const char* a0 = static_cast<const char*>(a);                                                              \
  const char* a3 = a0 + 3 * lda;                                                                             \
  const char* a6 = a0 + 6 * lda;                                                                             \
  const char* bp = static_cast<const char*>(b);                                                              \
  char* op = reinterpret_cast<char*>(o);                                                                     \
  asm volatile(EMBEVAL_ROWS8_ASM(insn)                                                                       \
               : [a0] "+r"(a0), [a3] "+r"(a3), [a6] "+r"(a6), [b] "+r"(bp), [n] "+r"(steps), [o] "+r"(op)    \
               : [lda] "r"(lda), [half] "r"(half), [ldb] "r"(ldb), [ldo] "r"(ldo)                            \
               : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10",    \
                 "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "memory")

EMBEVAL_AVX512_BF16_TARGET void vdp_8x32(const void* a, int64_t lda, const void* b, int64_t half, int64_t ldb,
                                         int64_t steps, float* o, int64_t ldo) {
  EMBEVAL_ROWS8_BODY("vdpbf16ps");
}

EMBEVAL_AVX512_MATH_TARGET void fma_8x32(const void* a, int64_t lda, const void* b, int64_t half, int64_t ldb,
                                         int64_t steps, float* o, int64_t ldo) {
  EMBEVAL_ROWS8_BODY("vfmadd231ps");
}

}  // namespace embeval

#endif
