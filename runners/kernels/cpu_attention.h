#pragma once
// embeval's self-attention on the CPU, one (batch row, head) at a time on
// each thread, its scores never leaving that thread's cache. bf16: its two
// products on AMX tiles, or, on a CPU with AVX512-BF16 and no AMX (AMD Zen
// 4, Intel Cooper Lake), as VDPBF16PS over the same layouts (below the AMX
// notes); fp32: the same steps with FMA products (fp32_attention, last).
//
// Per head: Q copied dense, K as the dword pairs of its transpose and V as
// pairs of rows interleaved (the two B-operand layouts AMX's TDPBF16PS
// reads), then per block of 32 query rows: the score tiles Q K^T (fp32),
// scale + mask + exp + rounding to bf16, and the context tiles P V (fp32),
// divided by the softmax's sum and rounded to bf16 into the [b, t, heads *
// hd] output. The head width is
// padded with zeros to a multiple of 32 and the keys to a multiple of 32,
// which leaves every product exact. Buffers grow with t, not t^2.
//
// Keys masked at the end of a row (BERT's padding) are skipped, exactly:
// their probabilities are 0 either way. The softmax runs four rows side by
// side in AVX-512 intrinsics, the probabilities rounded by VCVTNE2PS2BF16.
// The oneDNN forms in attention.cpp compute fp32 scores and softmax, bf16
// probabilities, fp32 accumulation of the context, rounded once; here the
// probabilities are rounded before their normalisation (exp(s - max) in
// bf16, the fp32 sum of the unrounded values dividing the fp32 context),
// as FlashAttention does: the same error bound, one rounding of a value in
// (0, 1] each, and 32 x hd divisions a block where there were 32 x t.
//
// Measured (BM_attention_bf16, tests/bench/bench_encoder.cpp; bert-base's
// 12 heads of 64, batch 32, half the rows half padding, 2 threads, Xeon
// with AMX): seq 128 2.8-3.4 ms against 4.5-4.7 for the oneDNN forms, seq
// 512 37-52 ms against 135-150. On the way: with two tile accumulators and
// the four-pass softmax of attention.cpp 4.5 ms at seq 128; four
// accumulators and the three-pass softmax here 3.8; skipping masked keys
// 3.7; four softmax rows at a time 3.3; items dealt out to the threads
// cyclically 2.7. Whole blocks of query rows loaded straight from the
// projection, not copied (BM_attention_bf16 at seq 128, alternating
// binaries, half the rows half padding): 2.84-2.92 ms against 3.06-3.33.
// The normalisation after P V, and the scale folded into exp's argument
// where the mask adds nothing (no pass writing scaled scores back; session
// 22, alternating binaries): 2.43 / 2.34 ms against 2.51 / 2.45. The
// exponential to bf16's need (avx512_math.h's exp2_for_bf16_16: 11
// operations, 3e-6 relative, where exp_nonpositive16 takes 17 for 1e-7),
// six alternating rounds: 2.09-2.28 ms (mean 2.17) against 2.31-2.61
// (2.49). Q held in four tiles for the scores where the head is 64 wide
// (two tile loads a 16 x 32 block of scores, not four), six alternating
// rounds at a slower moment: 2.39-2.52 ms (mean 2.44) against 2.44-2.57
// (2.50).
//
// VDPBF16PS products (cpu_attention.cpp): the same copies of K and V, the
// same softmax and normalisation; Q read in place as 32-bit broadcasts (a
// row's dword pair), 8 rows x 32 outputs a call (16 accumulators, in
// assembly). Zen 4, seq 128, batch 32, 2 threads: 5.2-5.8 ms against
// 12.1-13.4 for the oneDNN forms (cpu_attention.cpp has the details).
// attention.cpp says where it runs in the forward.
#include <cstdint>

namespace embeval {

// Which instructions run the two products.
enum class Bf16AttentionProducts { none, avx512_bf16, amx };

// Whether this CPU and build run `products` (the environment aside): amx on
// an x86-64 CPU with AMX-BF16, AVX-512BW and AVX512-BF16 whose kernel grants
// this process AMX tile state (Linux arch_prctl); avx512_bf16 on one with
// AVX-512BW and AVX512-BF16; both need a build with the intrinsics (GCC >=
// 11).
bool bf16_attention_runs(Bf16AttentionProducts products);

// What the model runs: amx where it runs, else avx512_bf16 where that
// runs, else none; EMBEVAL_NO_AMX_ATTENTION=1 rules out amx and
// EMBEVAL_NO_BF16_ATTENTION=1 both (to compare with the oneDNN forms).
Bf16AttentionProducts bf16_attention_products();

// "amx", "avx512_bf16", "none".
const char* bf16_attention_name(Bf16AttentionProducts products);

// qkv: [b, t, 3, heads, hd] as bf16 bits (BERT's fused projection,
// contiguous); mask: [b, t] fp32, added to the scaled scores; ctx: [b, t,
// heads * hd] bf16 bits, written. Runs on the ATen intra-op threads.
// Returns false (ctx untouched) where `products` is none or does not run
// here, or hd is odd (K and V are read as pairs).
bool bf16_attention(const uint16_t* qkv, const float* mask, int64_t b, int64_t t, int64_t heads, int64_t hd,
                    uint16_t* ctx, Bf16AttentionProducts products = bf16_attention_products());

// The fp32 kernel (cpu_attention.cpp's fp32 section: the same steps, FMA
// products, fp32 exponentials): true on a CPU with AVX-512BW and
// AVX512-BF16 (the steps it shares with the bf16 kernel are compiled for
// those) in a build with the intrinsics, unless EMBEVAL_NO_FP32_ATTENTION=1.
bool fp32_attention_available();

// bf16_attention's contract in fp32: qkv [b, t, 3, heads, hd], mask [b, t],
// ctx [b, t, heads * hd] written; false (ctx untouched) where
// fp32_attention_available() is false.
bool fp32_attention(const float* qkv, const float* mask, int64_t b, int64_t t, int64_t heads, int64_t hd, float* ctx);

}  // namespace embeval
