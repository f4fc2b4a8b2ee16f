// Quantized checkpoints on disk (runners/quant/quantized_checkpoint.h):
//  - what `embeval quantize` saves, for every method, loads back as a plain
//    checkpoint folder and gives the vectors the quantized model gave in
//    memory;
//  - folders in AutoGPTQ's layout (gptq v1 and gptq_v2, act-order g_idx) and
//    AutoAWQ's GEMM layout, built here from known integers with packers
//    written from the formats' documentation (tests/quant_doc_packers.h) and
//    this file's own safetensors bytes, load to exactly those weights;
//  - inconsistent ones fail with one line naming the file and the tensor.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "checkpoint_writer.h"
#include "harness/error.h"
#include "harness/fidelity.h"
#include "quant_doc_packers.h"
#include "runners/bert/bert_model.h"
#include "runners/checkpoint/checkpoint_weights.h"
#include "runners/checkpoint/safetensors_reader.h"
#include "runners/checkpoint_quantizer.h"
#include "runners/encoder_factory.h"
#include "runners/kernels/int8_linear.h"
#include "runners/kernels/weight_only_linear.h"
#include "runners/quant/quantized_checkpoint.h"
#include "runners/torch_runtime.h"
#include "test_util.h"

using namespace embeval;
namespace fs = std::filesystem;

namespace {

test::TinyCheckpoint tiny() {
  test::TinyCheckpoint c;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_layers = 2;
  c.num_heads = 4;
  c.vocab_size = 200;
  c.seed = 11;
  c.dense_out = 32;  // a 2_Dense module the quantized folder must keep
  c.normalize = true;
  return c;
}

std::vector<std::string> texts(int n, int seed) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string t;
    for (int k = 0; k < 5 + (i * 7 + seed) % 23; ++k) t += static_cast<char>('a' + (i * 31 + k * 17 + seed) % 26);
    out.push_back(t + " 量化 " + std::to_string(i));
  }
  return out;
}

double min_cosine(Encoder& a, Encoder& b, const std::vector<std::string>& t) {
  EncodeOptions o;
  return compare_rows(a.encode(t, o), b.encode(t, o)).min_cosine;
}

nlohmann::ordered_json read_json(const fs::path& f) {
  std::ifstream in(f);
  return nlohmann::ordered_json::parse(in);
}

void write_json(const fs::path& f, const nlohmann::ordered_json& j) { std::ofstream(f) << j.dump(2); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(QuantizedCheckpoint, EveryMethodSavesAndLoadsToTheSameVectors) {
  const fs::path src = test::scratch_dir("qckpt/src");
  test::write_checkpoint(src, tiny());
  // A second copy of the float weights, as Hugging Face folders often hold (.bin beside .safetensors).
  fs::copy_file(src / "model.safetensors", src / "pytorch_model.bin");
  // And files as symlinks into a blob store outside the folder, as a Hugging Face cache snapshot holds them.
  const fs::path blobs = test::scratch_dir("qckpt/blobs");
  fs::rename(src / "vocab.txt", blobs / "vocab-blob");
  fs::create_symlink(blobs / "vocab-blob", src / "vocab.txt");
  const std::vector<std::string> calib = texts(32, 1), probe = texts(24, 2);
  struct Case {
    const char* method;
    const char* quant_method;  // config.json quantization_config.quant_method
  };
  for (Case c : {Case{"wo-int8", "gptq"}, Case{"wo-int4-g32", "gptq"}, Case{"gptq-int4-g32-actorder", "gptq"},
                 Case{"awq-int4-g32", "awq"}, Case{"w8a8", "embeval-w8a8"}, Case{"sq-w8a8-a0.5", "embeval-w8a8"}}) {
    SCOPED_TRACE(c.method);
    RunnerOptions o;
    o.quant = c.method;
    if (std::string(c.method) != "wo-int8" && std::string(c.method) != "wo-int4-g32" && std::string(c.method) != "w8a8") {
      o.calib_texts = calib;
      o.calib_source = "32 test texts";
    }
    const fs::path out = test::scratch_dir("qckpt/out").parent_path() / (std::string("out-") + c.method);
    fs::remove_all(out);
    CheckpointQuantization q = quantize_checkpoint(src.string(), o, out, "embeval test");
    ASSERT_TRUE(fs::exists(out / "model.safetensors"));
    ASSERT_TRUE(fs::exists(out / "2_Dense" / "model.safetensors")) << "the sentence-transformers modules are copied";
    EXPECT_FALSE(fs::exists(out / "pytorch_model.bin")) << "the float weights stay behind";
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(out / "vocab.txt"))) << "a symlinked file is copied as a file";
    EXPECT_EQ(std::distance(fs::directory_iterator(blobs), fs::directory_iterator()), 1) << "nothing written beside the blobs";
    EXPECT_EQ(read_json(out / "config.json")["quantization_config"]["quant_method"], c.quant_method);
    EXPECT_EQ(read_json(out / "embeval_quantization.json")["method"], c.method);
    EXPECT_EQ(fs::exists(out / "quantize_config.json"), std::string(c.quant_method) == "gptq");
    const std::unique_ptr<Encoder> loaded = make_encoder(out.string());
    EXPECT_EQ(loaded->info().quantization, std::string(c.method) + " (quantized checkpoint)");
    // The same integers through the same kernels.
    EXPECT_GT(min_cosine(*q.encoder, *loaded, probe), 0.999999);
    // And the file is smaller than the float one for the weight-only methods.
    if (std::string(c.quant_method) != "embeval-w8a8") {
      EXPECT_LT(fs::file_size(out / "model.safetensors"), fs::file_size(src / "model.safetensors"));
    }
    // It also runs in a bf16 model: the same integers, bf16 activations.
    const std::unique_ptr<Encoder> loaded16 = make_encoder(out.string() + ",bf16");
    EXPECT_EQ(loaded16->info().dtype, "bf16");
    EXPECT_GT(min_cosine(*loaded, *loaded16, probe), 0.999);
    // And on a GPU, where libtorch sees one, on the ATen kernels in fp16.
    if (accelerator_description() != "none") {
      const std::unique_ptr<Encoder> cuda = make_encoder(out.string() + ",cuda,fp16");
      EXPECT_GT(min_cosine(*loaded, *cuda, probe), 0.995);
    }
    // Quantizing it again is refused.
    EXPECT_NE(error_of([&] { make_encoder(out.string() + ",wo-int8"); }).find("already quantized"), std::string::npos);
    EXPECT_NE(error_of([&] { quantize_checkpoint(src.string(), o, out, "t"); }).find("already exists"),
              std::string::npos);
  }
}

namespace {

// A checkpoint folder whose six Linears per layer hold known integers in
// AutoGPTQ's or AutoAWQ's layout, written byte by byte here.
struct Written {
  fs::path dir;
  std::map<std::string, at::Tensor> expect;  // layer name -> dequantized weight [out, in]
};

enum class Kind { gptq_v1, gptq_v2, gptq_actorder, awq };

SafetensorsTensor raw(const std::string& name, TensorDtype d, const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return {name, d, c.sizes().vec(),
          std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * c.element_size())};
}

Written write_packed(Kind kind, const std::string& name,
                     const std::function<void(std::vector<SafetensorsTensor>&, nlohmann::ordered_json&)>& edit = {}) {
  Written w;
  w.dir = test::scratch_dir("qckpt/" + name);
  test::TinyCheckpoint c = tiny();
  c.dense_out = 0;
  test::write_checkpoint(w.dir, c);
  const StateDict sd = load_state_dict(w.dir);
  const int64_t gs = 32;
  std::vector<SafetensorsTensor> tensors;
  std::vector<std::string> linears;
  for (int l = 0; l < 2; ++l)
    for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                          "intermediate.dense", "output.dense"})
      linears.push_back("encoder.layer." + std::to_string(l) + "." + n);
  for (const auto& [tname, t] : sd.tensors) {
    bool quantized = false;
    for (const std::string& l : linears) quantized |= tname == l + ".weight";
    if (!quantized) tensors.push_back(raw(tname, TENSOR_DTYPE_F32, t.to(at::kFloat)));
  }
  uint64_t seed = 100;
  at::Tensor qkv_gidx;  // Q, K and V share their input, and their act-order g_idx
  for (const std::string& l : linears) {
    const at::Tensor& fw = sd.tensors.at(l + ".weight");
    const int64_t out = fw.size(0), in = fw.size(1), groups = in / gs;
    QuantizedWeight q = test::random_quantized(out, in, 4, gs, seed++);
    at::Tensor gidx = at::arange(in, at::kInt).div(gs, "floor").to(at::kInt);
    if (kind == Kind::gptq_actorder) {
      const bool qkv = l.find("attention.self") != std::string::npos;
      if (!qkv || !qkv_gidx.defined()) {
        at::manual_seed(seed++);
        gidx = at::randperm(in, at::kLong).div(gs, "floor").to(at::kInt);
        if (qkv) qkv_gidx = gidx;
      } else {
        gidx = qkv_gidx;
      }
    }
    // Reference dequantisation, written out: W[o][i] = s[o][g] (q[o][i] - z[o][g]), g = g_idx[i].
    at::Tensor expect = at::empty({out, in});
    auto codes = q.codes.accessor<uint8_t, 2>();
    auto zeros = q.zeros.accessor<int32_t, 2>();
    auto scales = q.scales.accessor<float, 2>();
    auto g = gidx.accessor<int32_t, 1>();
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        expect[o][i] = scales[o][g[i]] * (static_cast<float>(codes[o][i]) - static_cast<float>(zeros[o][g[i]]));
    w.expect[l] = expect;
    const at::Tensor scales_go = q.scales.t().contiguous().to(at::kHalf);  // [groups, out], fp16
    if (kind == Kind::awq) {
      tensors.push_back(raw(l + ".qweight", TENSOR_DTYPE_I32, test::tensor_of(test::doc_pack_awq(q.codes.t()), in, out / 8)));
      tensors.push_back(raw(l + ".qzeros", TENSOR_DTYPE_I32, test::tensor_of(test::doc_pack_awq(q.zeros.t()), groups, out / 8)));
      tensors.push_back(raw(l + ".scales", TENSOR_DTYPE_F16, scales_go));
    } else {
      const bool v1 = kind != Kind::gptq_v2;
      tensors.push_back(raw(l + ".qweight", TENSOR_DTYPE_I32,
                            test::tensor_of(test::doc_pack_gptq_qweight(q.codes, 4), in * 4 / 32, out)));
      tensors.push_back(raw(l + ".qzeros", TENSOR_DTYPE_I32,
                            test::tensor_of(test::doc_pack_gptq_qzeros(q.zeros, 4, v1), groups, out * 4 / 32)));
      tensors.push_back(raw(l + ".scales", TENSOR_DTYPE_F16, scales_go));
      tensors.push_back(raw(l + ".g_idx", TENSOR_DTYPE_I32, gidx));
    }
  }
  nlohmann::ordered_json config = read_json(w.dir / "config.json");
  if (kind == Kind::awq)
    config["quantization_config"] = {{"quant_method", "awq"}, {"zero_point", true}, {"group_size", gs},
                                     {"bits", 4},             {"version", "gemm"},  {"modules_to_not_convert", nullptr}};
  else
    config["quantization_config"] = {{"quant_method", "gptq"},
                                     {"bits", 4},
                                     {"group_size", gs},
                                     {"desc_act", kind == Kind::gptq_actorder},
                                     {"sym", false},
                                     {"checkpoint_format", kind == Kind::gptq_v2 ? "gptq_v2" : "gptq"}};
  if (edit) edit(tensors, config);
  write_json(w.dir / "config.json", config);
  write_safetensors(w.dir / "model.safetensors", tensors, {{"format", "pt"}});
  return w;
}

}  // namespace

TEST(QuantizedCheckpoint, ReadsAutoGptqAndAutoAwqLayoutsToTheExactWeights) {
  for (Kind kind : {Kind::gptq_v1, Kind::gptq_v2, Kind::gptq_actorder, Kind::awq}) {
    SCOPED_TRACE(static_cast<int>(kind));
    const Written w = write_packed(kind, "layout" + std::to_string(static_cast<int>(kind)));
    StateDict sd = load_state_dict(w.dir);
    const std::optional<LoadedQuantization> q = read_quantized_checkpoint(w.dir, sd);
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->linears.size(), 12u);
    EXPECT_EQ(q->method, kind == Kind::awq ? "awq-int4-g32" : kind == Kind::gptq_actorder ? "gptq-int4-g32-actorder"
                                                                                            : "gptq-int4-g32");
    const BertConfig config = read_bert_config(w.dir / "config.json");
    BertModel model(config, sd, at::kFloat, c10::Device(c10::kCPU), "test");
    install_quantized_checkpoint(model, sd, *q, w.dir.string());
    for (int64_t l = 0; l < 2; ++l)
      for (LinearSlot slot : LINEAR_SLOTS) {
        const auto* op = dynamic_cast<const WeightOnlyLinear*>(&model.linear(l, slot));
        ASSERT_NE(op, nullptr) << linear_slot_name(slot);
        std::vector<at::Tensor> parts;
        for (const std::string& n : model.linear_names(l, slot)) parts.push_back(w.expect.at(n));
        EXPECT_TRUE(op->dequantized_weight().equal(at::cat(parts, 0))) << l << " " << linear_slot_name(slot);
      }
    // And through the spec factory, as `embeval run --model DIR` loads it.
    const std::unique_ptr<Encoder> e = make_encoder(w.dir.string());
    EXPECT_EQ(e->info().quantization, q->method + " (quantized checkpoint)");
    EXPECT_EQ(e->encode(texts(3, 5), EncodeOptions()).rows, 3);
  }
}

TEST(QuantizedCheckpoint, InconsistentFilesAreOneLineErrorsNamingFileAndTensor) {
  auto load_error = [](const fs::path& dir) { return error_of([&] { make_encoder(dir.string()); }); };
  auto expect = [&](const std::string& case_name, Kind kind,
                    const std::function<void(std::vector<SafetensorsTensor>&, nlohmann::ordered_json&)>& edit,
                    const std::vector<std::string>& parts) {
    const Written w = write_packed(kind, "bad-" + case_name, edit);
    const std::string e = load_error(w.dir);
    for (const std::string& p : parts) EXPECT_NE(e.find(p), std::string::npos) << case_name << ": " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << case_name << ": " << e;
  };
  auto tensor = [](std::vector<SafetensorsTensor>& t, const std::string& name) -> SafetensorsTensor& {
    for (auto& x : t)
      if (x.name == name) return x;
    throw std::runtime_error("no tensor " + name);
  };
  // The layer read first (tensors are read in name order).
  const std::string q0 = "encoder.layer.0.attention.output.dense";
  expect("bits", Kind::gptq_v1, [](auto&, auto& c) { c["quantization_config"]["bits"] = 8; },
         {"model.safetensors", q0 + ".qzeros: shape [2, 8], expected [1, 16]", "8 bits"});
  expect("group", Kind::gptq_v2, [](auto&, auto& c) { c["quantization_config"]["group_size"] = 16; },
         {"model.safetensors", q0 + ".qzeros: shape"});
  expect("three-bit", Kind::gptq_v1, [](auto&, auto& c) { c["quantization_config"]["bits"] = 3; },
         {"config.json", "3-bit GPTQ"});
  expect("method", Kind::gptq_v1, [](auto&, auto& c) { c["quantization_config"]["quant_method"] = "bitsandbytes"; },
         {"config.json", "quant_method \"bitsandbytes\" is not a layout embeval reads"});
  expect("marlin", Kind::gptq_v1, [](auto&, auto& c) { c["quantization_config"]["checkpoint_format"] = "marlin"; },
         {"config.json", "checkpoint_format \"marlin\""});
  expect("gemv", Kind::awq, [](auto&, auto& c) { c["quantization_config"]["version"] = "gemv"; },
         {"config.json", "AWQ version \"gemv\""});
  expect("no-config", Kind::gptq_v1, [](auto&, auto& c) { c.erase("quantization_config"); },
         {"model.safetensors", ".qweight\" is packed but the folder has no quantization config"});
  expect("scales-dtype", Kind::awq,
         [&](auto& t, auto&) {
           SafetensorsTensor& s = tensor(t, q0 + ".scales");
           s.dtype = TENSOR_DTYPE_I16;
         },
         {"model.safetensors", q0 + ".scales"});
  expect("g_idx-range", Kind::gptq_actorder,
         [&](auto& t, auto&) {
           SafetensorsTensor& g = tensor(t, "encoder.layer.1.output.dense.g_idx");
           int32_t big = 99;
           std::memcpy(g.bytes.data(), &big, 4);
         },
         {"model.safetensors", "encoder.layer.1.output.dense.g_idx: group ids outside"});
  expect("divisor-inf", Kind::awq,
         [&](auto& t, auto&) {
           at::Tensor d = at::ones({64});
           d[7] = INFINITY;
           t.push_back(raw(q0 + ".input_divisor", TENSOR_DTYPE_F32, d));
         },
         {"model.safetensors", q0 + ".input_divisor must be positive and finite, [in = 64]"});
  expect("half-fused", Kind::gptq_v1,
         [&](auto& t, auto&) {
           // The key layer back in float: Q, K and V no longer quantized alike.
           const std::string k = "encoder.layer.0.attention.self.key";
           t.erase(std::remove_if(t.begin(), t.end(),
                                  [&](const SafetensorsTensor& x) { return x.name.rfind(k + ".q", 0) == 0 || x.name == k + ".scales" || x.name == k + ".g_idx"; }),
                   t.end());
           t.push_back(raw(k + ".weight", TENSOR_DTYPE_F32, at::zeros({64, 64})));
         },
         {"is quantized but not all of", "encoder.layer.0.attention.self.key"});

  // AutoGPTQ's quantize_config.json / AutoAWQ's quant_config.json beside
  // config.json's quantization_config: the settings both give must agree
  // (AutoAWQ names them w_bit / q_group_size and writes version "GEMM").
  {
    const Written w = write_packed(Kind::gptq_v1, "qcfg-agrees");
    write_json(w.dir / "quantize_config.json",
               {{"bits", 4}, {"group_size", 32}, {"desc_act", false}, {"sym", false}, {"damp_percent", 0.01}});
    EXPECT_EQ(make_encoder(w.dir.string())->info().quantization, "gptq-int4-g32 (quantized checkpoint)");
    write_json(w.dir / "quantize_config.json", {{"bits", 8}, {"group_size", 32}, {"desc_act", false}});
    const std::string e = load_error(w.dir);
    EXPECT_NE(e.find("quantize_config.json: bits 8 disagrees with config.json's quantization_config (4)"), std::string::npos)
        << e;
  }
  {
    const Written w = write_packed(Kind::awq, "awq-cfg");
    write_json(w.dir / "quant_config.json", {{"zero_point", true}, {"q_group_size", 32}, {"w_bit", 4}, {"version", "GEMM"}});
    EXPECT_EQ(make_encoder(w.dir.string())->info().quantization, "awq-int4-g32 (quantized checkpoint)");
    write_json(w.dir / "quant_config.json", {{"zero_point", true}, {"q_group_size", 128}, {"w_bit", 4}, {"version", "GEMM"}});
    const std::string e = load_error(w.dir);
    EXPECT_NE(e.find("quant_config.json: group_size 128 disagrees with config.json's quantization_config (32)"),
              std::string::npos)
        << e;
  }
}
