#include "runners/quant/quant_spec.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/error.h"

namespace embeval {
namespace {

// Names a user is likely to have meant, for did-you-mean.
const std::vector<std::string>& example_names() {
  static const std::vector<std::string> names = {
      "fp32",          "bf16",           "fp16",           "wo-int8",
      "wo-int8-g128",  "wo-int4-g128",   "wo-int4-g64",    "wo-int4",
      "awq-int4-g128", "awq-int4-g64",   "gptq-int4-g128", "gptq-int4-g128-actorder",
      "gptq-int8-g128", "w8a8",          "sq-w8a8-a0.5",   "sq-w8a8-a0.8"};
  return names;
}

std::vector<std::string> split_dashes(const std::string& s) {
  std::vector<std::string> parts;
  for (size_t pos = 0;;) {
    size_t d = s.find('-', pos);
    parts.push_back(s.substr(pos, d == std::string::npos ? std::string::npos : d - pos));
    if (d == std::string::npos) break;
    pos = d + 1;
  }
  return parts;
}

[[noreturn]] void unknown(const std::string& text, const std::string& why) {
  fail("unknown quantization method \"{}\"{}{}; known forms: {}", text, why.empty() ? "" : ": " + why,
       did_you_mean(text, example_names()), fmt::join(quant_spec_forms(), "; "));
}

// "int4" / "int8" -> 4 / 8 among `allowed`.
int parse_bits(const std::string& text, const std::string& part, std::initializer_list<int> allowed,
               const char* method) {
  for (int b : allowed)
    if (part == fmt::format("int{}", b)) return b;
  std::vector<std::string> names;
  for (int b : allowed) names.push_back(fmt::format("int{}", b));
  unknown(text, fmt::format("{} takes {} weights, not \"{}\"", method, fmt::join(names, " or "), part));
}

// "g128" -> 128: a power of two from 8 to 4096, written without leading zeros.
int64_t parse_group(const std::string& text, const std::string& part) {
  const std::string digits = part.substr(1);
  if (digits.empty() || digits.size() > 4 || !std::all_of(digits.begin(), digits.end(), ::isdigit) ||
      digits[0] == '0')
    unknown(text, fmt::format("a group size is g followed by a number, not \"{}\"", part));
  const int64_t g = std::stoll(digits);
  if (g < 8 || g > 4096 || (g & (g - 1)) != 0)
    unknown(text, fmt::format("group size {} is not a power of two from 8 to 4096", g));
  return g;
}

// "a0.5" -> 0.5: a plain decimal in [0, 1].
double parse_alpha(const std::string& text, const std::string& part) {
  const std::string num = part.substr(1);
  const bool plain = !num.empty() && num.size() <= 12 && std::count(num.begin(), num.end(), '.') <= 1 &&
                     num != "." && std::all_of(num.begin(), num.end(), [](char c) { return c == '.' || std::isdigit(static_cast<unsigned char>(c)); });
  if (!plain) unknown(text, fmt::format("alpha is a followed by a decimal in [0, 1], not \"{}\"", part));
  const double a = std::strtod(num.c_str(), nullptr);
  if (!(a >= 0 && a <= 1)) unknown(text, fmt::format("alpha {} is outside [0, 1]", num));
  return a;
}

}  // namespace

std::string QuantSpec::name() const {
  const std::string group = group_size > 0 ? fmt::format("-g{}", group_size) : "";
  switch (method) {
    case QuantMethod::rtn:
      if (act_bits == 8) return "w8a8";
      return fmt::format("wo-int{}{}", weight_bits, group);
    case QuantMethod::awq:
      return fmt::format("awq-int{}{}", weight_bits, group);
    case QuantMethod::gptq:
      return fmt::format("gptq-int{}{}{}", weight_bits, group, act_order ? "-actorder" : "");
    case QuantMethod::smoothquant:
      // fmt's shortest round-trip form: 0.5 -> "0.5", 0.85 -> "0.85".
      return fmt::format("sq-w8a8-a{}", alpha);
  }
  EMBEVAL_ASSERT(false);
}

bool QuantSpec::operator==(const QuantSpec& o) const {
  return method == o.method && weight_bits == o.weight_bits && group_size == o.group_size &&
         symmetric == o.symmetric && act_bits == o.act_bits && act_order == o.act_order && alpha == o.alpha;
}

QuantSpec parse_quant_spec(const std::string& text) {
  const std::vector<std::string> p = split_dashes(text);
  QuantSpec q;
  size_t next = 0;
  if (p[0] == "wo") {
    if (p.size() < 2) unknown(text, "wo needs int8 or int4");
    q.method = QuantMethod::rtn;
    q.weight_bits = parse_bits(text, p[1], {8, 4}, "wo");
    q.symmetric = q.weight_bits == 8;
    next = 2;
    if (next < p.size() && !p[next].empty() && p[next][0] == 'g') q.group_size = parse_group(text, p[next++]);
  } else if (p[0] == "awq") {
    if (p.size() < 2) unknown(text, "awq needs int4");
    q.method = QuantMethod::awq;
    q.weight_bits = parse_bits(text, p[1], {4}, "awq (AutoAWQ's GEMM format)");
    q.symmetric = false;
    next = 2;
    if (next < p.size() && !p[next].empty() && p[next][0] == 'g') q.group_size = parse_group(text, p[next++]);
  } else if (p[0] == "gptq") {
    if (p.size() < 2) unknown(text, "gptq needs int4 or int8");
    q.method = QuantMethod::gptq;
    q.weight_bits = parse_bits(text, p[1], {4, 8}, "gptq");
    q.symmetric = false;
    next = 2;
    if (next < p.size() && !p[next].empty() && p[next][0] == 'g') q.group_size = parse_group(text, p[next++]);
    if (next < p.size() && p[next] == "actorder") q.act_order = true, ++next;
  } else if (p[0] == "w8a8") {
    q.method = QuantMethod::rtn;
    q.weight_bits = 8;
    q.act_bits = 8;
    next = 1;
  } else if (p[0] == "sq") {
    if (p.size() < 3 || p[1] != "w8a8" || p[2].empty() || p[2][0] != 'a')
      unknown(text, "SmoothQuant is sq-w8a8-aX with alpha X in [0, 1]");
    q.method = QuantMethod::smoothquant;
    q.weight_bits = 8;
    q.act_bits = 8;
    q.alpha = parse_alpha(text, p[2]);
    next = 3;
  } else {
    unknown(text, "");
  }
  if (next != p.size())
    unknown(text, fmt::format("\"{}\" is not expected after \"{}\"", p[next], q.name()));
  return q;
}

bool is_quant_token(const std::string& token) {
  for (const char* prefix : {"wo-", "awq-", "gptq-", "sq-", "w8a8"})
    if (token.rfind(prefix, 0) == 0) return true;
  return token == "wo" || token == "awq" || token == "gptq" || token == "sq";
}

std::string QuantVariant::name() const {
  if (!quant) return dtype;
  return dtype.empty() || dtype == "fp32" ? quant->name() : dtype + "+" + quant->name();
}

std::vector<QuantVariant> parse_quant_list(const std::string& text) {
  std::vector<QuantVariant> out;
  size_t pos = 0;
  for (;;) {
    size_t comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (item.empty()) fail("--quant \"{}\": an empty entry; expected a comma-separated list such as fp32,bf16,wo-int8", text);
    QuantVariant v;
    const size_t plus = item.find('+');
    if (item == "fp32" || item == "bf16" || item == "fp16") {
      v.dtype = item;
    } else if (plus != std::string::npos) {
      // DTYPE+METHOD: the method's Linears and everything around them in DTYPE.
      const std::string dtype = item.substr(0, plus);
      if (dtype != "bf16" && dtype != "fp32" && dtype != "fp16")
        fail("--quant \"{}\": \"{}\" before '+' is not a dtype a quantized model computes in; expected bf16, fp16 "
             "(CUDA) or fp32, as in bf16+wo-int8",
             text, dtype);
      v.dtype = dtype;
      v.quant = parse_quant_spec(item.substr(plus + 1));
    } else {
      v.quant = parse_quant_spec(item);
    }
    for (const auto& seen : out)
      if (seen.name() == v.name()) fail("--quant \"{}\": {} is listed twice", text, v.name());
    out.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::vector<std::string> quant_spec_forms() {
  return {"fp32 | bf16 | fp16 (no quantization)",
          "bf16+METHOD, fp16+METHOD (in a --quant list: the method with bf16 / fp16 activations, fp16 on CUDA only; a "
          "model spec says ,bf16,METHOD)",
          "wo-int8[-gN] (round-to-nearest weight-only, symmetric)",
          "wo-int4[-gN] (round-to-nearest weight-only, zero points)",
          "awq-int4[-gN] (AWQ)",
          "gptq-int4|int8[-gN][-actorder] (GPTQ)",
          "w8a8 (int8 weights and per-token int8 activations)",
          "sq-w8a8-aX (SmoothQuant, alpha X in [0, 1])",
          "N: a power of two from 8 to 4096"};
}

}  // namespace embeval
