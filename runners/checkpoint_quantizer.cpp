#include "runners/checkpoint_quantizer.h"

#include <fmt/format.h>

#include "harness/error.h"
#include "runners/bert/bert_encoder.h"
#include "runners/quant/quant_spec.h"
#include "runners/quant/quantize_model.h"
#include "runners/quant/quantized_checkpoint.h"

namespace embeval {
namespace fs = std::filesystem;

CheckpointQuantization quantize_checkpoint(const std::string& dir_spec, const RunnerOptions& options, const fs::path& out,
                                           const std::string& tool) {
  if (options.quant.empty()) fail("quantize: no method given");
  if (options.fake_quant) fail("quantize: a fake-quant model cannot be saved (it holds float weights)");
  const std::string dir = dir_spec.rfind("hf:", 0) == 0 ? dir_spec.substr(3) : dir_spec;
  if (!fs::is_directory(dir)) fail("{}: not a checkpoint folder", dir);
  if (fs::exists(out)) fail("{}: already exists; give a new folder for the quantized checkpoint", out.string());
  const QuantSpec spec = parse_quant_spec(options.quant);
  CheckpointQuantization r;
  const ModelTransform transform = [&](BertModel& model, const StateDict& weights,
                                       const std::vector<CalibrationBatch>& calibration) {
    std::vector<QuantizedLinear> keep;
    const QuantizeReport q = quantize_model(model, weights, spec, false, calibration, &keep);
    r.seconds = q.seconds;
    r.bytes_before = q.bytes_before;
    r.bytes_after = q.bytes_after;
    r.description = q.description;
    QuantizationProvenance p;
    p.calibration = options.calib_source;
    p.seconds = q.seconds;
    p.tool = tool;
    save_quantized_checkpoint(dir, out, weights, keep, spec, p);
    return fmt::format("{} ({:.1f} s; Linear weights {:.2f} -> {:.2f} MB)", q.description, q.seconds,
                       q.bytes_before / 1e6, q.bytes_after / 1e6);
  };
  // A checkpoint that is already quantized is refused by the encoder.
  const WeightsHook prepare = [](StateDict& weights, const fs::path& tdir) {
    const auto loaded = read_quantized_checkpoint(tdir, weights);
    return loaded ? loaded->method : std::string();
  };
  r.encoder = std::make_unique<BertEncoder>(dir, options, nullptr, fs::path(), transform, prepare);
  return r;
}

}  // namespace embeval
