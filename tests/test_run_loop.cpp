// The run loop records what the encoder reports about accelerator memory:
// the peak since the reset it asks for before each task, or nothing (NULL)
// for CPU backends; and the prompts of the roles a task encoded, only those.
#include <gtest/gtest.h>

#include "harness/result_store.h"
#include "harness/run_loop.h"
#include "tests/test_util.h"

using namespace embeval;

namespace {

// Vectors from the text's bytes (any deterministic function will do); a
// device-memory peak that is only meaningful after a reset.
class DeviceMemoryEncoder : public Encoder {
 public:
  explicit DeviceMemoryEncoder(bool on_device) : on_device_(on_device) {
    info_.spec = on_device ? "test:device" : "test:cpu";
    info_.dim = 3;
  }
  Matrix encode(const std::vector<std::string>& texts, const EncodeOptions&) override {
    Matrix m(static_cast<int64_t>(texts.size()), 3);
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string& t = texts[i];
      m.row(static_cast<int64_t>(i))[0] = static_cast<float>(t.size());
      m.row(static_cast<int64_t>(i))[1] = t.empty() ? 0.f : static_cast<float>(static_cast<unsigned char>(t[0]));
      m.row(static_cast<int64_t>(i))[2] = 1.f;
    }
    peak_ = std::max<int64_t>(peak_, 1000 * static_cast<int64_t>(texts.size()));
    return m;
  }
  const EncoderInfo& info() const override { return info_; }
  // A prompt per role and task (as a model with task-keyed prompts has).
  std::string prompt_used(const EncodeOptions& o) const override {
    return tag + std::string(role_name(o.role)) + "@" + o.task_name + "/" + o.task_type + ": ";
  }
  std::string tag;  // another prompt rule behind the same fingerprint
  int64_t peak_device_bytes() const override { return on_device_ ? peak_ : Encoder::peak_device_bytes(); }
  void reset_peak_device_bytes() override {
    ++resets;
    peak_ = 0;
  }
  int resets = 0;

 private:
  bool on_device_;
  int64_t peak_ = -5;  // never reported after a reset
  EncoderInfo info_;
};

}  // namespace

TEST(RunLoop, RecordsTheEncodersDevicePeakPerTaskAndNullForCpuBackends) {
  const auto task = test::source_dir() / "datasets/cmteb/STSB/mini";
  for (bool on_device : {true, false}) {
    ResultStore store(test::scratch_dir("run_loop") / (on_device ? "device.sqlite" : "cpu.sqlite"));
    DeviceMemoryEncoder encoder(on_device);
    RunOptions options;
    options.latency_samples = 0;
    run_tasks(encoder, {task}, store, RunRecord(), options);
    EXPECT_EQ(encoder.resets, 1);
    auto results = store.latest_results();
    ASSERT_EQ(results.size(), 1u);
    // The mini STSB test split is encoded in one call per column: the peak is
    // 1000 x the larger call, always positive; -1 (NULL) for the CPU encoder.
    if (on_device)
      EXPECT_GT(results[0].timing.peak_device_bytes, 0);
    else
      EXPECT_EQ(results[0].timing.peak_device_bytes, -1);
  }
}

TEST(RunLoop, RecordsThePromptsOfTheRolesATaskEncodedOnly) {
  ResultStore store(test::scratch_dir("run_loop") / "prompts.sqlite");
  DeviceMemoryEncoder encoder(false);
  RunOptions options;
  options.latency_samples = 0;
  const auto root = test::source_dir() / "datasets/cmteb";
  run_tasks(encoder, {root / "STSB/mini", root / "CMRC2018Retrieval/mini"}, store, RunRecord(), options);
  auto results = store.latest_results();
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    if (r.task.task.type == "STS")  // sentences only, with no prompt type (as MTEB encodes them)
      EXPECT_EQ(r.prompts, nlohmann::json({{"text", "text@STSB/STS: "}})) << r.prompts.dump();
    else  // queries and corpus
      EXPECT_EQ(r.prompts, nlohmann::json({{"query", "query@CMRC2018Retrieval-mini/Retrieval: "},
                                           {"passage", "passage@CMRC2018Retrieval-mini/Retrieval: "}}))
          << r.prompts.dump();
  }
}

// Code that changes the prompts a model gets (the fingerprint unchanged)
// must not reuse results computed with the old ones: the rerun says why and
// records a new row; an unchanged rerun skips.
TEST(RunLoop, ReevaluatesWhenThePromptsChangedAndSaysWhy) {
  ResultStore store(test::scratch_dir("run_loop") / "stale.sqlite");
  const auto task = test::source_dir() / "datasets/cmteb/STSB/mini";
  DeviceMemoryEncoder encoder(false);
  RunOptions options;
  options.latency_samples = 0;
  std::vector<std::string> lines;
  options.log = [&](const std::string& l) { lines.push_back(l); };
  run_tasks(encoder, {task}, store, RunRecord(), options);
  lines.clear();
  run_tasks(encoder, {task}, store, RunRecord(), options);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find("already recorded, skipped"), std::string::npos) << lines[0];
  encoder.tag = "new ";
  lines.clear();
  RunSummary s = run_tasks(encoder, {task}, store, RunRecord(), options);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[0].find("recorded with other prompts, so evaluated again"), std::string::npos) << lines[0];
  ASSERT_EQ(s.tasks.size(), 1u);
  EXPECT_FALSE(s.tasks[0].skipped);
  auto results = store.latest_results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].prompts, nlohmann::json({{"text", "new text@STSB/STS: "}}));
}
