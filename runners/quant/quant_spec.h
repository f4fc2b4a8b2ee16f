#pragma once
// Quantization methods are named by strings, parsed in one place (faiss's
// index_factory habit): the name says the whole configuration and the
// canonical form parses back to the same spec.
//
//   wo-int8[-gN]            round-to-nearest weight-only int8, symmetric; per
//                           output channel, or in groups of N input columns
//   wo-int4[-gN]            round-to-nearest weight-only int4, asymmetric
//                           (zero points); per output channel or groups of N
//   awq-int4[-gN]           AWQ (arXiv 2306.00978): activation-aware scales,
//                           then clipping search; int4 asymmetric
//   gptq-int4|int8[-gN][-actorder]
//                           GPTQ (arXiv 2210.17323): Hessian-based error
//                           feedback, columns in act-order if asked; asymmetric
//   w8a8                    int8 per-channel weights, int8 per-token dynamic
//                           activations, no smoothing
//   sq-w8a8-aX              SmoothQuant (arXiv 2211.10438) with migration
//                           strength alpha = X in [0, 1], then w8a8
//
// N is a power of two from 8 to 4096 (groups must also divide each Linear's
// input width; that is checked when a model is quantized, naming the tensor).
// fp32 / bf16 / fp16 are not quantization: they are the compute dtype, and a
// quantization list (`--quant fp32,bf16,wo-int8`) may mix both.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace embeval {

enum class QuantMethod { rtn, awq, gptq, smoothquant };

struct QuantSpec {
  QuantMethod method = QuantMethod::rtn;
  int weight_bits = 8;     // 4 or 8
  int64_t group_size = 0;  // 0: one group per output channel (the whole input row)
  bool symmetric = true;   // int8 weights symmetric, int4 weights with zero points
  int act_bits = 0;        // 0: weight-only; 8: int8 per-token dynamic activations
  bool act_order = false;  // GPTQ: quantize columns in order of decreasing Hessian diagonal
  double alpha = 0;        // SmoothQuant migration strength

  bool weight_only() const { return act_bits == 0; }
  // The canonical name, e.g. "awq-int4-g128"; parse_quant_spec(name()) == *this.
  std::string name() const;
  bool operator==(const QuantSpec& o) const;
};

// Parses one method name; UserError naming it (with a did-you-mean and the
// known forms) when it is not one.
QuantSpec parse_quant_spec(const std::string& text);
// Whether a model-spec token is meant as a quantization method (so the spec
// parser reports its errors as such rather than "unknown token").
bool is_quant_token(const std::string& token);

// One entry of a --quant list: a compute dtype and, optionally, a method.
struct QuantVariant {
  std::string dtype;  // "fp32", "bf16", "fp16", or "" (the run's dtype)
  std::optional<QuantSpec> quant;
  std::string name() const;  // "bf16", "awq-int4-g128", "bf16+wo-int8"
};
// "fp32,bf16,wo-int8,bf16+w8a8,...": each entry a dtype, a method, or
// bf16+METHOD (the method's kernels take and give bf16, and the rest of the
// model, attention and LayerNorms, runs in bf16, as PyTorch / IPEX run a
// weight-only model under bfloat16); fp16+METHOD likewise, for CUDA (the
// CPU refuses fp16 when the model loads); a repeated entry is an error.
std::vector<QuantVariant> parse_quant_list(const std::string& text);

// One line per form, for --help and errors.
std::vector<std::string> quant_spec_forms();

}  // namespace embeval
