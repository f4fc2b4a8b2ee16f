// The BERT forward pass (runners/bert/bert_model.h) in fp32, bf16 and each
// quantized variant, side by side in one process, on one random Hugging
// Face checkpoint written by tests/checkpoint_writer.h (so a peer, e.g.
// scripts/bench_pytorch_eager.py --checkpoint, can load the same weights):
//
//   shape 0 bge_small  hidden 512, 4 layers, 8 heads, FFN 2048
//   shape 1 bert_base  hidden 768, 12 layers, 12 heads, FFN 3072
//   variant 0 fp32, 1 bf16, 2 wo-int8, 3 wo-int4-g128, 4 w8a8, 5 sq-w8a8-a0.5,
//   6-9 the same four methods in a bf16 model (bf16+wo-int8, ...: the
//   quantized kernels take and give bf16, attention and LayerNorms in bf16)
//   (gptq-* and awq-* run on the same WeightOnlyLinear kernel as wo-int4-g128,
//   so wo-int4-g128 stands for them in speed)
//
// BM_quant_forward/shape/variant/batch/threads: BertModel::forward on a
// padded batch of 32 texts of at most 128 tokens (lengths 128 down to 97, as
// in bench_encoder.cpp) or on one text of 128 tokens (batch 1: the iteration
// time is the latency). Counters: sent_per_s, tok_per_s and GFLOP_per_s with
// bench_encoder.cpp's count, FLOPs = batch x seq x layers x (8 h^2 + 4 h ff +
// 4 seq h); check_cos, the smallest cosine of a text's mean-pooled output to
// fp32's on the check batch, and check_token_cos, the mean centred cosine of
// each token's state to fp32's after the first --check_layers layers (see
// check() below). SmoothQuant calibrates on 2 x 16 random texts of 128 tokens.
//
// Before timing, every model's answer is checked on the batch of 32: fp32's
// padded rows must equal the texts encoded alone (max |diff| 1e-3); every
// other variant must be finite, with each mean-pooled text at cosine > 0.9 to
// fp32's (0.99 for bf16) and, on the check model (the same weights, first 2
// layers: random weights amplify any rounding layer after layer, so the full
// depth cannot tell a noisy kernel from a wrong one), a centred token
// cosine > 0.9; a failure skips the benchmark with the reason.
//
// With the batch of 32, fp32- and bf16-GEMM variants (fp32, wo-*; bf16,
// bf16+wo-*) also measure the GEMM peak of their dtype just before and just
// after the timed loop (bench_encoder.cpp's BM_gemm_peak: PackedLinear,
// 4096 x 1024 x 1024, ~0.5 s each): counters peak_before_GFLOP_per_s and
// peak_after_GFLOP_per_s. This VM's speed drifts by 10-30% over minutes, so
// a fraction of a peak measured at the start of a long run says as much
// about the drift as about the kernel; the adjacent peaks bound it.
//
// BM_layer_breakdown/shape/variant/batch/threads: one encoder layer (layer 0)
// run part by part with the model's own kernels, timed per part (ms per
// layer per batch, averaged): qkv_ms (the fused Q/K/V Linear), attention_ms
// (runners/kernels/attention.h), attn_out_ms, ffn_in_ms (GELU included: fused
// where the kernel can) and ffn_out_ms (Linears), ffn_fused_ms (the two FFN
// Linears as one fused_with call, what the model runs where the kernels fuse,
// e.g. W8A8; ~0 where they do not), qkv_attention_blocked_ms (Q/K/V and the
// attention as one blocked_qkv_attention call, what the model runs where
// the kernels have it and the whole-layer blocks below do not: bf16+W8A8 on
// AMX; ~0 where they do not),
// layer_blocks_ms (the whole layer as one blocked_bert_layer call, what the
// model runs where the kernels have it: bf16 on AMX, runners/bert/
// bert_layer_blocks.h; ~0 where they do not), add_ln_ms (both residual
// adds and LayerNorms: runners/kernels/layer_norm.h). The LayerNorm parameters are ones / zeros of the right
// shape (same cost as the model's). The whole forward adds the embeddings.
//
// BM_int8_gemm_peak/shape/threads: embeval's Int8Linear (W8A8, per-token
// activation quantization included) at 4096 rows x (768->768, 768->3072,
// 3072->768), GOP_per_s = 2 rows in out / s; the label names the kernel (on
// a CPU without VNNI the int8 GEMM is fp32-emulated: runners/kernels/int8_linear.h).
//
// Options (before the Google Benchmark ones):
//   --checkpoint_dir=DIR  where the random checkpoints live (DIR/<shape>,
//                         written when absent); default $TMPDIR/embeval-bench-quant-forward
//   --dump_dir=DIR        writes DIR/<shape>/batch_ids.npy, batch_mask.npy and
//                         <variant>.npy (last hidden state of the check batch, fp32)
//                         so a driver can compare engines on the same input
//   --check_layers=N      layers of the check model (default 2); its outputs are
//                         dumped as <variant>.L<N>.npy
//   --timing_only         builds each model and times it without the check (or
//                         the dumps, or the adjacent peaks): one untimed forward
//                         first. For repeated timing rounds of a driver (scripts/
//                         bench_quant_vs_peers.py --rounds) after a checked run of
//                         the same binary on the same checkpoint
//   --bf16_rows=N         bf16 runs (and is checked on) only the first N rows of
//                         the batch of 32 (counter "rows", noted in the label):
//                         without a bf16 GEMM in oneDNN (AVX2-only CPUs) the
//                         Linears fall back to ATen at ~1 GFLOP/s, and a batch of
//                         32 at bert-base takes ~10 minutes
//
// Run: ./build/tests/bench_quant_forward --benchmark_filter='BM_quant_forward/shape:1/variant:3/batch:32/threads:2'
// scripts/bench_quant_vs_peers.py runs this with the peers (PyTorch eager,
// quantize_dynamic, ONNX Runtime) and prints one table.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../checkpoint_writer.h"
#include "runners/bert/bert_layer_blocks.h"
#include "runners/bert/bert_model.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/kernels/attention.h"
#include "runners/kernels/layer_norm.h"
#include "runners/kernels/int8_linear.h"
#include "runners/kernels/packed_linear.h"
#include "runners/quant/quant_spec.h"
#include "runners/quant/quantize_model.h"
#include "runners/torch_runtime.h"

namespace fs = std::filesystem;
using namespace embeval;

namespace {

struct Shape {
  const char* name;
  int64_t hidden, layers, heads, ffn;
};
const Shape SHAPES[] = {{"bge_small", 512, 4, 8, 2048}, {"bert_base", 768, 12, 12, 3072}};
const char* const VARIANTS[] = {"fp32",         "bf16",         "wo-int8",           "wo-int4-g128",
                                "w8a8",         "sq-w8a8-a0.5", "bf16+wo-int8",      "bf16+wo-int4-g128",
                                "bf16+w8a8",    "bf16+sq-w8a8-a0.5"};
constexpr int N_VARIANTS = 10;
bool is_bf16(int variant) { return variant == 1 || variant >= 6; }
constexpr int64_t SEQ = 128, CHECK_BATCH = 32, VOCAB = 8000;

fs::path g_checkpoint_root = fs::temp_directory_path() / "embeval-bench-quant-forward";
fs::path g_dump_root;
int64_t g_bf16_rows = CHECK_BATCH, g_check_layers = 2;
bool g_timing_only = false;

// Rows of the batch of 32 a variant runs: bf16 may run fewer (--bf16_rows).
int64_t batch_rows(int variant, int64_t batch) {
  return is_bf16(variant) && batch == CHECK_BATCH ? std::min(g_bf16_rows, CHECK_BATCH) : batch;
}

// The shape's random checkpoint, written once (to a temporary folder, then renamed).
fs::path checkpoint(int shape) {
  const Shape& s = SHAPES[shape];
  const fs::path dir = g_checkpoint_root / s.name;
  if (fs::exists(dir / "config.json")) return dir;
  test::TinyCheckpoint c;
  c.hidden_size = s.hidden, c.num_layers = s.layers, c.num_heads = s.heads, c.intermediate_size = s.ffn;
  c.vocab_size = VOCAB, c.max_position_embeddings = 512, c.extra_heads = false, c.seed = 7;
  const fs::path tmp = g_checkpoint_root / (std::string(s.name) + ".partial");
  fs::remove_all(tmp);
  test::write_checkpoint(tmp, c);
  fs::remove_all(dir);
  fs::rename(tmp, dir);
  return dir;
}

// The batch of bench_encoder.cpp: lengths 128, 127, ... (at least 97), padded on the right.
std::pair<at::Tensor, at::Tensor> make_batch(int64_t batch, int64_t seq, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor ids = at::randint(5, VOCAB, {batch, seq}, at::kLong);
  at::Tensor mask = at::ones({batch, seq}, at::kLong);
  for (int64_t r = 0; r < batch; ++r) {
    const int64_t len = std::max<int64_t>(2, seq - r * seq / (4 * batch));
    ids[r].narrow(0, len, seq - len).fill_(0);
    mask[r].narrow(0, len, seq - len).fill_(0);
  }
  return {ids, mask};
}
const std::pair<at::Tensor, at::Tensor>& check_batch() {
  static const auto b = make_batch(CHECK_BATCH, SEQ, 1);
  return b;
}

// Mean over the unpadded tokens: [b, t, h] -> [b, h], fp32.
at::Tensor mean_pool(const at::Tensor& hidden, const at::Tensor& mask) {
  at::Tensor m = mask.to(at::kFloat).unsqueeze(-1);
  return (hidden.to(at::kFloat) * m).sum(1) / m.sum(1);
}

// A minimal .npy (version 1.0) writer for float32 and int64 tensors.
void write_npy(const fs::path& file, const at::Tensor& t_in) {
  const at::Tensor t = t_in.contiguous();
  const bool f32 = t.scalar_type() == at::kFloat;
  std::string shape;
  for (int64_t d : t.sizes()) shape += std::to_string(d) + ", ";
  std::string header = std::string("{'descr': '") + (f32 ? "<f4" : "<i8") + "', 'fortran_order': False, 'shape': (" +
                       shape + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(file, std::ios::binary);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
}

std::vector<CalibrationBatch> calibration() {
  std::vector<CalibrationBatch> out;
  for (uint64_t seed : {11, 12}) {
    auto [ids, mask] = make_batch(16, SEQ, seed);
    out.push_back({ids, mask});
  }
  return out;
}

struct Built {
  std::unique_ptr<BertModel> model;
  std::string label, error;
  double check_cos = 1, check_token_cos = 1;
};

// The shape's checkpoint in a variant; layers > 0 keeps only the first `layers` encoder layers (the check model).
std::unique_ptr<BertModel> load(int shape, int variant, std::string* label, int64_t layers = 0) {
  const fs::path dir = checkpoint(shape);
  const StateDict weights = load_state_dict(dir);
  BertConfig config = read_bert_config(dir / "config.json");
  if (layers > 0) config.num_hidden_layers = std::min(layers, config.num_hidden_layers);
  auto model = std::make_unique<BertModel>(config, weights, is_bf16(variant) ? at::kBFloat16 : at::kFloat,
                                           c10::Device(c10::kCPU), dir.string());
  if (variant < 2) {
    *label = std::string(VARIANTS[variant]) + " " + model->linear_implementation();
  } else {
    const std::string name = VARIANTS[variant];
    const QuantSpec spec = parse_quant_spec(variant >= 6 ? name.substr(5) : name);
    const QuantizeReport r = quantize_model(*model, weights, spec, false,
                                            spec.method == QuantMethod::smoothquant ? calibration() : std::vector<CalibrationBatch>{});
    *label = (variant >= 6 ? "bf16+" : "") + r.description;
  }
  return model;
}

// Mean over the unpadded tokens of the cosine of each token's state to the
// reference's, both centred on the reference's mean token: the shared part of
// every token (LayerNorm's bias) left out, so unrelated states score ~0.
double centred_token_cosine(const at::Tensor& out, const at::Tensor& ref, const at::Tensor& mask) {
  const at::Tensor m = mask.to(at::kBool);
  const at::Tensor a = out.to(at::kDouble).index({m}), r = ref.to(at::kDouble).index({m});
  const at::Tensor mu = r.mean(0);
  return at::cosine_similarity(a - mu, r - mu, 1).mean().item<double>();
}

// fp32's answers on the check batch, per shape: mean-pooled (all layers) and
// the last hidden state of the check model (the first --check_layers layers).
struct Reference {
  at::Tensor pooled, shallow;
};
std::map<int, Reference>& references() {
  static std::map<int, Reference> r;
  return r;
}

// Checks a freshly built model on the check batch (and dumps its outputs).
// A random BERT amplifies small errors layer after layer (1% weight noise:
// centred token cosine 0.84 after 12 layers, 1.000 after 2), so lossy variants
// are held to the fp32 model closely only on the check model of a few layers;
// all layers must still give finite values and mean-pooled texts near fp32's
// (a weak test alone: two different texts' mean-pooled outputs are at cosine
// 0.99 at bert-base, LayerNorm's bias being shared by every token).
void check(int shape, int variant, Built& b) {
  const int64_t rows = batch_rows(variant, CHECK_BATCH);
  const auto& [all_ids, all_mask] = check_batch();
  const at::Tensor ids = all_ids.narrow(0, 0, rows), mask = all_mask.narrow(0, 0, rows);
  const at::Tensor out = b.model->forward(ids, mask).to(at::kFloat);
  std::string unused;
  const at::Tensor shallow = load(shape, variant, &unused, g_check_layers)->forward(ids, mask).to(at::kFloat);
  if (!g_dump_root.empty()) {
    const fs::path d = g_dump_root / SHAPES[shape].name;
    fs::create_directories(d);
    write_npy(d / "batch_ids.npy", all_ids);
    write_npy(d / "batch_mask.npy", all_mask);
    write_npy(d / (std::string(VARIANTS[variant]) + ".npy"), out);
    write_npy(d / (std::string(VARIANTS[variant]) + ".L" + std::to_string(g_check_layers) + ".npy"), shallow);
  }
  if (!at::isfinite(out).all().item<bool>() || !at::isfinite(shallow).all().item<bool>()) {
    b.error = "non-finite output";
    return;
  }
  const at::Tensor pooled = mean_pool(out, mask);
  if (variant == 0) {
    const int64_t r = CHECK_BATCH - 1, len = mask[r].sum().item<int64_t>();
    at::Tensor alone = b.model->forward(ids[r].narrow(0, 0, len).unsqueeze(0), mask[r].narrow(0, 0, len).unsqueeze(0));
    const double diff = (out[r].narrow(0, 0, len) - alone[0]).abs().max().item<double>();
    if (!(diff <= 1e-3)) b.error = "padded row differs from the text alone by " + std::to_string(diff);
    references()[shape] = {pooled, shallow};
    return;
  }
  if (!references().count(shape)) {  // fp32 not built yet in this process: build it for the reference
    auto fp32 = load(shape, 0, &unused);
    references()[shape] = {mean_pool(fp32->forward(all_ids, all_mask), all_mask),
                           load(shape, 0, &unused, g_check_layers)->forward(all_ids, all_mask)};
  }
  const Reference& ref = references()[shape];
  b.check_cos = at::cosine_similarity(pooled, ref.pooled.narrow(0, 0, rows), 1).min().item<double>();
  b.check_token_cos = centred_token_cosine(shallow, ref.shallow.narrow(0, 0, rows), mask);
  const double need = variant == 1 ? 0.99 : 0.9;
  if (!(b.check_cos > need))
    b.error = "mean-pooled cosine to fp32 " + std::to_string(b.check_cos) + " (want > " + std::to_string(need) + ")";
  else if (!(b.check_token_cos > 0.9))
    b.error = "centred token cosine to fp32 after " + std::to_string(g_check_layers) + " layers " +
              std::to_string(b.check_token_cos) + " (want > 0.9)";
}

// One model at a time (bert-base fp32 is 440 MB); benchmarks are registered variant-major.
Built& built(int shape, int variant) {
  static std::map<std::pair<int, int>, Built> cache;
  const auto key = std::make_pair(shape, variant);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  cache.clear();
  Built& b = cache[key];
  try {
    b.model = load(shape, variant, &b.label);
    if (!g_timing_only) check(shape, variant, b);
  } catch (const std::exception& e) {
    b.error = e.what();
  }
  return b;
}

double forward_flops(const Shape& s, int64_t batch) {
  return double(batch) * SEQ * s.layers * (8.0 * s.hidden * s.hidden + 4.0 * s.hidden * s.ffn + 4.0 * SEQ * s.hidden);
}

// The first `rows` rows of the check batch (one row: a full-length text of SEQ tokens).
std::pair<at::Tensor, at::Tensor> timed_input(int64_t rows) {
  const auto& [ids, mask] = check_batch();
  if (rows == CHECK_BATCH) return check_batch();
  return {ids.narrow(0, 0, rows).contiguous(), mask.narrow(0, 0, rows).contiguous()};
}

std::string rows_note(int variant, int64_t batch) {
  const int64_t rows = batch_rows(variant, batch);
  return rows == batch ? "" : " (" + std::to_string(rows) + " of the " + std::to_string(batch) + " rows: --bf16_rows)";
}

// GFLOP/s of PackedLinear on 4096 x 1024 x 1024 in `type` over ~`seconds`
// (bench_encoder.cpp's BM_gemm_peak), the layer made once per type; bf16
// the faster of embeval's kernel and oneDNN's (EMBEVAL_NO_AMX_BF16_GEMM=1
// while its layer is made), each over ~`seconds`.
double gemm_peak_of(at::ScalarType type, bool onednn, double seconds) {
  static std::map<std::pair<at::ScalarType, bool>, std::pair<at::Tensor, std::unique_ptr<PackedLinear>>> made;
  auto& [x, layer] = made[{type, onednn}];
  if (!layer) {
    x = at::randn({4096, 1024}).to(type);
    const char* had = std::getenv("EMBEVAL_NO_AMX_BF16_GEMM");
    const std::string saved = had ? had : "";
    if (onednn) setenv("EMBEVAL_NO_AMX_BF16_GEMM", "1", 1);
    layer = std::make_unique<PackedLinear>(at::randn({1024, 1024}).to(type), at::Tensor(), LinearActivation::none);
    if (onednn) {
      if (had)
        setenv("EMBEVAL_NO_AMX_BF16_GEMM", saved.c_str(), 1);
      else
        unsetenv("EMBEVAL_NO_AMX_BF16_GEMM");
    }
  }
  benchmark::DoNotOptimize((*layer)(x).data_ptr());  // warm
  int64_t runs = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    benchmark::DoNotOptimize((*layer)(x).data_ptr());
    ++runs;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return 2.0 * 4096 * 1024 * 1024 * static_cast<double>(runs) / elapsed / 1e9;
}

double gemm_peak(at::ScalarType type, double seconds) {
  const double own = gemm_peak_of(type, false, seconds);
  return type == at::kBFloat16 ? std::max(own, gemm_peak_of(type, true, seconds)) : own;
}

void BM_quant_forward(benchmark::State& state) {
  const int shape = static_cast<int>(state.range(0)), variant = static_cast<int>(state.range(1));
  const int64_t batch = batch_rows(variant, state.range(2));
  at::set_num_threads(static_cast<int>(state.range(3)));
  Built& b = built(shape, variant);
  if (!b.error.empty()) {
    state.SkipWithError((std::string(VARIANTS[variant]) + ": " + b.error).c_str());
    return;
  }
  const auto [ids, mask] = timed_input(batch);
  // The peak of the GEMM dtype the variant computes in (W8A8's int8 peak is
  // PyTorch's, measured by the driver script).
  const bool int8 = variant == 4 || variant == 5 || variant == 8 || variant == 9;
  const bool adjacent = state.range(2) == CHECK_BATCH && !int8 && !g_timing_only;
  const at::ScalarType peak_type = is_bf16(variant) ? at::kBFloat16 : at::kFloat;
  const double before = adjacent ? gemm_peak(peak_type, 0.5) : 0.0;
  // Without the check's forward, the first timed one would pay for the
  // first touch of every buffer and oneDNN's kernel creation.
  if (g_timing_only) benchmark::DoNotOptimize(b.model->forward(ids, mask).data_ptr());
  for (auto _ : state) {
    at::Tensor out = b.model->forward(ids, mask);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  if (adjacent) {
    state.counters["peak_before_GFLOP_per_s"] = before;
    state.counters["peak_after_GFLOP_per_s"] = gemm_peak(peak_type, 0.5);
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["sent_per_s"] = benchmark::Counter(batch * iters, benchmark::Counter::kIsRate);
  state.counters["tok_per_s"] = benchmark::Counter(double(batch) * SEQ * iters, benchmark::Counter::kIsRate);
  state.counters["GFLOP_per_s"] =
      benchmark::Counter(forward_flops(SHAPES[shape], batch) * iters / 1e9, benchmark::Counter::kIsRate);
  if (!g_timing_only) {  // unchecked: no check counters at all, rather than their initial 1s
    state.counters["check_cos"] = b.check_cos;
    state.counters["check_token_cos"] = b.check_token_cos;
  }
  state.counters["rows"] = static_cast<double>(batch);
  state.SetLabel(std::string(SHAPES[shape].name) + " " + b.label + rows_note(variant, state.range(2)) +
                 (g_timing_only ? " (--timing_only: not checked)" : ""));
}

void BM_layer_breakdown(benchmark::State& state) {
  const int shape = static_cast<int>(state.range(0)), variant = static_cast<int>(state.range(1));
  const int64_t batch = batch_rows(variant, state.range(2));
  at::set_num_threads(static_cast<int>(state.range(3)));
  Built& b = built(shape, variant);
  if (!b.error.empty()) {
    state.SkipWithError((std::string(VARIANTS[variant]) + ": " + b.error).c_str());
    return;
  }
  c10::InferenceMode guard;
  const BertModel& m = *b.model;
  const int64_t h = m.config().hidden_size, heads = m.config().num_attention_heads;
  const double eps = m.config().layer_norm_eps;
  const auto [ids, mask] = timed_input(batch);
  const at::Tensor x = m.embed(ids), bias = m.mask_bias(mask);
  const at::Tensor ln_w = at::ones({h}, x.options()), ln_b = at::zeros({h}, x.options());
  const Linear &qkv = m.linear(0, LinearSlot::qkv), &attn_out = m.linear(0, LinearSlot::attn_out),
               &ffn_in = m.linear(0, LinearSlot::ffn_in), &ffn_out = m.linear(0, LinearSlot::ffn_out);
  const LayerBlockParts layer_parts{qkv,  attn_out, ffn_in, ffn_out, ln_w, ln_b, ln_w, ln_b, eps, heads,
                                    m.config().intermediate_size};
  enum { QKV, ATTN, ATTN_OUT, FFN_IN, FFN_OUT, ADD_LN, FFN_FUSED, QKV_ATTN_BLOCKED, LAYER_BLOCKS, EMBED, PARTS };
  const char* names[PARTS] = {"qkv_ms",       "attention_ms", "attn_out_ms",
                              "ffn_in_ms",    "ffn_out_ms",   "add_ln_ms",
                              "ffn_fused_ms", "qkv_attention_blocked_ms", "layer_blocks_ms", "embed_ms"};
  double total[PARTS] = {};
  using clock = std::chrono::steady_clock;
  for (auto _ : state) {
    auto t0 = clock::now();
    auto lap = [&](int part) {
      const auto t1 = clock::now();
      total[part] += std::chrono::duration<double, std::milli>(t1 - t0).count();
      t0 = t1;
    };
    at::Tensor q = qkv(x);
    lap(QKV);
    at::Tensor ctx = fused_qkv_attention(q, bias, heads);
    lap(ATTN);
    at::Tensor a = attn_out(ctx);
    lap(ATTN_OUT);
    at::Tensor y = add_layer_norm(a, x, ln_w, ln_b, eps);
    lap(ADD_LN);
    at::Tensor f = ffn_in(y);
    lap(FFN_IN);
    at::Tensor o = ffn_out(f);
    lap(FFN_OUT);
    at::Tensor z = add_layer_norm(o, y, ln_w, ln_b, eps);
    lap(ADD_LN);
    benchmark::DoNotOptimize(z.data_ptr());
    // The same FFN as one fused call where the kernels have one (what the
    // model runs then), timed in the same iterations as the two calls.
    at::Tensor fused = ffn_in.fused_with(ffn_out, y);
    lap(FFN_FUSED);
    if (fused.defined()) benchmark::DoNotOptimize(fused.data_ptr());
    at::Tensor blocked = blocked_qkv_attention(qkv, x, bias, heads);
    lap(QKV_ATTN_BLOCKED);
    if (blocked.defined()) benchmark::DoNotOptimize(blocked.data_ptr());
    at::Tensor layer = blocked_bert_layer(layer_parts, x, bias);
    lap(LAYER_BLOCKS);
    if (layer.defined()) benchmark::DoNotOptimize(layer.data_ptr());
    // What the forward does once before the layers: embeddings, their
    // LayerNorm, the additive mask.
    at::Tensor e = m.embed(ids), mb = m.mask_bias(mask);
    lap(EMBED);
    benchmark::DoNotOptimize(e.data_ptr());
    benchmark::DoNotOptimize(mb.data_ptr());
  }
  for (int p = 0; p < PARTS; ++p) state.counters[names[p]] = benchmark::Counter(total[p], benchmark::Counter::kAvgIterations);
  state.counters["rows"] = static_cast<double>(batch);
  state.SetLabel(std::string(SHAPES[shape].name) + " " + b.label + rows_note(variant, state.range(2)));
}

void BM_int8_gemm_peak(benchmark::State& state) {
  const int64_t sizes[3][2] = {{768, 768}, {768, 3072}, {3072, 768}};
  const int64_t rows = 4096, in = sizes[state.range(0)][0], out = sizes[state.range(0)][1];
  at::set_num_threads(static_cast<int>(state.range(1)));
  at::manual_seed(0);
  const at::Tensor w = at::randn({out, in}) / 30, x = at::randn({rows, in});
  const at::Tensor sw = w.abs().amax(1).clamp_min(1e-5) / 127;
  const Int8Linear layer(at::round(w / sw.unsqueeze(1)).clamp(-127, 127).to(at::kChar), sw, at::randn({out}),
                         LinearActivation::none);
  for (auto _ : state) {
    at::Tensor y = layer(x);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["GOP_per_s"] =
      benchmark::Counter(2.0 * rows * in * out * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(layer.implementation());
}

// Registered per model, forward then breakdown, so each model is built (and quantized) once. A
// --benchmark_min_time on the command line applies to all (a MinTime set here would override it).
void register_benchmarks(bool min_time_given) {
  auto* peak = benchmark::RegisterBenchmark("BM_int8_gemm_peak", BM_int8_gemm_peak);
  peak->ArgNames({"shape", "threads"})->ArgsProduct({{0, 1, 2}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();
  if (!min_time_given) peak->MinTime(1.0);
  for (int shape = 0; shape < 2; ++shape)
    for (int variant = 0; variant < N_VARIANTS; ++variant)
      for (auto [name, fn] : {std::make_pair("BM_quant_forward", &BM_quant_forward),
                              std::make_pair("BM_layer_breakdown", &BM_layer_breakdown)}) {
        auto* b = benchmark::RegisterBenchmark(name, fn);
        b->ArgNames({"shape", "variant", "batch", "threads"});
        for (int64_t batch : {CHECK_BATCH, int64_t{1}})
          for (int threads : {1, 2}) b->Args({shape, variant, batch, threads});
        b->Unit(benchmark::kMillisecond)->UseRealTime();
        if (!min_time_given) b->MinTime(name[3] == 'q' ? 2.0 : 1.0);
      }
}

}  // namespace


int main(int argc, char** argv) {
  tune_malloc_for_inference();
  std::vector<char*> rest;
  bool min_time_given = false;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    min_time_given |= a.rfind("--benchmark_min_time", 0) == 0;
    if (a.rfind("--checkpoint_dir=", 0) == 0) g_checkpoint_root = a.substr(17);
    else if (a.rfind("--dump_dir=", 0) == 0) g_dump_root = a.substr(11);
    else if (a.rfind("--bf16_rows=", 0) == 0) g_bf16_rows = std::max<int64_t>(1, std::stoll(a.substr(12)));
    else if (a.rfind("--check_layers=", 0) == 0) g_check_layers = std::max<int64_t>(1, std::stoll(a.substr(15)));
    else if (a == "--timing_only") g_timing_only = true;
    else rest.push_back(argv[i]);
  }
  register_benchmarks(min_time_given);
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
