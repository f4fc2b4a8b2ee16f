// Quantized checkpoint folders as `embeval quantize` writes them, one part
// replaced by the input: AutoGPTQ with act-order (g_idx), AutoGPTQ 8-bit,
// AutoAWQ GEMM, and embeval's W8A8 (runners/quant/FORMATS.md). The first
// byte picks the folder (byte % 4) and the part ((byte / 4) % 4):
//   0 config.json (its quantization_config), 1 quantize_config.json (made
//   where the folder has none: a second layout's marker), 2
//   embeval_quantization.json, 3 model.safetensors's JSON header, the tensor
//   bytes after it kept (so names, dtypes, shapes and offsets of qweight,
//   qzeros, scales, g_idx, weight_scale ... disagree with the data in every
//   way the input can say).
// The folder must then load and encode, or stop with a one-line error: the
// issue's "a quantized checkpoint with inconsistent shapes, bits or group
// size, or a layout embeval does not read".
#include <cstdlib>
#include <cstring>

#include "runners/checkpoint_quantizer.h"
#include "runners/encoder_factory.h"
#include "tests/checkpoint_writer.h"
#include "tests/fuzz/fuzz_input.h"

using namespace embeval;

namespace {

const char* const METHODS[] = {"gptq-int4-g8-actorder", "gptq-int8-g16", "awq-int4-g8", "sq-w8a8-a0.5"};
const char* const PARTS[] = {"config.json", "quantize_config.json", "embeval_quantization.json", "model.safetensors"};

// The quantized folders, made once per process from one small checkpoint.
const std::filesystem::path& folders() {
  static const std::filesystem::path root = [] {
    const auto r = fuzz::scratch("quantized/float/config.json").parent_path().parent_path();
    test::TinyCheckpoint c;
    c.vocab_size = 40, c.hidden_size = 16, c.num_layers = 1, c.num_heads = 2, c.intermediate_size = 32;
    c.max_position_embeddings = 16, c.normalize = true, c.extra_heads = false;
    test::write_checkpoint(r / "float", c);
    RunnerOptions o;
    for (int i = 0; i < 24; ++i) o.calib_texts.push_back("text " + std::to_string(i * 37) + " 你好 world");
    o.calib_source = "fuzz";
    for (const char* m : METHODS) {
      o.quant = m;
      quantize_checkpoint((r / "float").string(), o, r / m, "fuzz");
    }
    // EMBEVAL_FUZZ_SEEDS=DIR writes the seeds (corpus/fuzz_quantized_checkpoint/):
    // each part as written, behind its selector byte; the safetensors part
    // is its JSON header.
    if (const char* seeds = std::getenv("EMBEVAL_FUZZ_SEEDS")) {
      for (int i = 0; i < 4; ++i)
        for (int p = 0; p < 4; ++p) {
          const auto file = r / METHODS[i] / PARTS[p];
          if (!std::filesystem::exists(file)) continue;
          std::string bytes = fuzz::read_bytes(file);
          if (p == 3) {
            uint64_t len = 0;
            std::memcpy(&len, bytes.data(), 8);
            bytes = bytes.substr(8, len);
          }
          std::ofstream(std::filesystem::path(seeds) / ("seed-" + std::to_string(i + 4 * p) + "-" + METHODS[i] + "-" +
                                                        PARTS[p]),
                        std::ios::binary)
              << static_cast<char>(i + 4 * p) << bytes;
        }
    }
    return r;
  }();
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::filesystem::path& root = folders();
  if (size == 0) return 0;
  const std::filesystem::path dir = root / METHODS[data[0] % 4];
  const fuzz::SavedFile saved(dir / PARTS[(data[0] / 4) % 4]);
  const std::string& original = saved.bytes;
  const std::filesystem::path& target = saved.file;
  if (target.filename() == "model.safetensors" && original.size() >= 8) {
    // The input is the header; the 8-byte length says its size, the tensor
    // bytes follow as they were.
    uint64_t old_len = 0;
    std::memcpy(&old_len, original.data(), 8);
    const uint64_t len = size - 1;
    std::string bytes(reinterpret_cast<const char*>(&len), 8);
    bytes.append(reinterpret_cast<const char*>(data + 1), size - 1);
    bytes.append(original, 8 + old_len, std::string::npos);
    std::ofstream(target, std::ios::binary | std::ios::trunc) << bytes;
  } else {
    fuzz::write_bytes(target, data + 1, size - 1);
  }
  fuzz::expect_clean([&] {
    std::unique_ptr<Encoder> enc = make_encoder("hf:" + dir.string());
    const Matrix m = enc->encode({"hello world", "", "你好 world 123"}, EncodeOptions{});
    EMBEVAL_ASSERT(m.rows == 3 && m.cols == enc->info().dim && m.values.size() == size_t(m.rows * m.cols));
  });
  return 0;
}
