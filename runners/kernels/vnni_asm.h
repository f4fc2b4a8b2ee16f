#pragma once
// Assembly text the VPDPBUSD kernels share (vnni_group_gemm.cpp,
// amx_s8_gemm.cpp): zeroing accumulator registers zmm0-23 and storing them
// to an asm operand named acc, zmm i at byte 64 i, for use inside an asm
// statement's template.

#define EMBEVAL_ASM_ZERO_0_15 \
  "vpxord %%zmm0, %%zmm0, %%zmm0\n\t" "vpxord %%zmm1, %%zmm1, %%zmm1\n\t" \
  "vpxord %%zmm2, %%zmm2, %%zmm2\n\t" "vpxord %%zmm3, %%zmm3, %%zmm3\n\t" \
  "vpxord %%zmm4, %%zmm4, %%zmm4\n\t" "vpxord %%zmm5, %%zmm5, %%zmm5\n\t" \
  "vpxord %%zmm6, %%zmm6, %%zmm6\n\t" "vpxord %%zmm7, %%zmm7, %%zmm7\n\t" \
  "vpxord %%zmm8, %%zmm8, %%zmm8\n\t" "vpxord %%zmm9, %%zmm9, %%zmm9\n\t" \
  "vpxord %%zmm10, %%zmm10, %%zmm10\n\t" "vpxord %%zmm11, %%zmm11, %%zmm11\n\t" \
  "vpxord %%zmm12, %%zmm12, %%zmm12\n\t" "vpxord %%zmm13, %%zmm13, %%zmm13\n\t" \
  "vpxord %%zmm14, %%zmm14, %%zmm14\n\t" "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
#define EMBEVAL_ASM_ZERO_16_23 \
  "vpxord %%zmm16, %%zmm16, %%zmm16\n\t" "vpxord %%zmm17, %%zmm17, %%zmm17\n\t" \
  "vpxord %%zmm18, %%zmm18, %%zmm18\n\t" "vpxord %%zmm19, %%zmm19, %%zmm19\n\t" \
  "vpxord %%zmm20, %%zmm20, %%zmm20\n\t" "vpxord %%zmm21, %%zmm21, %%zmm21\n\t" \
  "vpxord %%zmm22, %%zmm22, %%zmm22\n\t" "vpxord %%zmm23, %%zmm23, %%zmm23\n\t"
#define EMBEVAL_ASM_STORE_0_15 \
  "vmovdqu32 %%zmm0, 0(%[acc])\n\t" "vmovdqu32 %%zmm1, 64(%[acc])\n\t" \
  "vmovdqu32 %%zmm2, 128(%[acc])\n\t" "vmovdqu32 %%zmm3, 192(%[acc])\n\t" \
  "vmovdqu32 %%zmm4, 256(%[acc])\n\t" "vmovdqu32 %%zmm5, 320(%[acc])\n\t" \
  "vmovdqu32 %%zmm6, 384(%[acc])\n\t" "vmovdqu32 %%zmm7, 448(%[acc])\n\t" \
  "vmovdqu32 %%zmm8, 512(%[acc])\n\t" "vmovdqu32 %%zmm9, 576(%[acc])\n\t" \
  "vmovdqu32 %%zmm10, 640(%[acc])\n\t" "vmovdqu32 %%zmm11, 704(%[acc])\n\t" \
  "vmovdqu32 %%zmm12, 768(%[acc])\n\t" "vmovdqu32 %%zmm13, 832(%[acc])\n\t" \
  "vmovdqu32 %%zmm14, 896(%[acc])\n\t" "vmovdqu32 %%zmm15, 960(%[acc])\n\t"
#define EMBEVAL_ASM_STORE_16_23 \
  "vmovdqu32 %%zmm16, 1024(%[acc])\n\t" "vmovdqu32 %%zmm17, 1088(%[acc])\n\t" \
  "vmovdqu32 %%zmm18, 1152(%[acc])\n\t" "vmovdqu32 %%zmm19, 1216(%[acc])\n\t" \
  "vmovdqu32 %%zmm20, 1280(%[acc])\n\t" "vmovdqu32 %%zmm21, 1344(%[acc])\n\t" \
  "vmovdqu32 %%zmm22, 1408(%[acc])\n\t" "vmovdqu32 %%zmm23, 1472(%[acc])\n\t"
