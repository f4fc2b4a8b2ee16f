// The run loop records what the encoder reports about accelerator memory:
// the peak since the reset it asks for before each task, or nothing (NULL)
// for CPU backends; the prompts of the roles a task encoded, only those; and
// single-text latency, in turn with a reference encoder where one is given.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

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

namespace {

// An encoder whose every call takes `ms` milliseconds (asleep: the timing is
// the point, not the vectors) and which keeps the texts of its one-text calls.
class SleepingEncoder : public DeviceMemoryEncoder {
 public:
  explicit SleepingEncoder(double ms) : DeviceMemoryEncoder(false), ms_(ms) {}
  Matrix encode(const std::vector<std::string>& texts, const EncodeOptions& o) override {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(ms_ * 1000)));
    if (texts.size() == 1) single.push_back(texts[0]);
    return DeviceMemoryEncoder::encode(texts, o);
  }
  std::vector<std::string> single;

 private:
  double ms_;
};

}  // namespace

// With a reference encoder (the fp32 model, `embeval run --quant fp32,...`),
// each task's single-text latency is measured in blocks of 25 texts, the
// encoder's and the reference's in turn on the same texts, each block after
// two untimed calls; the reference's p50 is recorded beside the encoder's.
// Without one, nothing is recorded for it.
TEST(RunLoop, MeasuresLatencyInTurnWithAReferenceAndRecordsItsMedian) {
  const auto task = test::source_dir() / "datasets/cmteb/STSB/mini";
  ResultStore store(test::scratch_dir("run_loop") / "paired.sqlite");
  SleepingEncoder variant(4.0), reference(1.0);
  RunOptions options;
  options.latency_samples = 60;
  options.latency_reference = &reference;
  run_tasks(variant, {task}, store, RunRecord(), options);
  auto results = store.latest_results();
  ASSERT_EQ(results.size(), 1u);
  const TimingRecord& t = results[0].timing;
  ASSERT_GT(t.latency_samples, 25);  // more than one block
  const size_t n = static_cast<size_t>(t.latency_samples), blocks = (n + 24) / 25;
  // The reference encodes only here: every timed text once, two untimed a block.
  EXPECT_EQ(reference.single.size(), n + 2 * blocks);
  // The same texts as the encoder's last n + 2 x blocks one-text calls, as multisets.
  ASSERT_GE(variant.single.size(), n + 2 * blocks);
  std::vector<std::string> ours(variant.single.end() - static_cast<std::ptrdiff_t>(n + 2 * blocks), variant.single.end());
  std::vector<std::string> theirs = reference.single;
  std::sort(ours.begin(), ours.end());
  std::sort(theirs.begin(), theirs.end());
  EXPECT_EQ(ours, theirs);
  // Sleeps of 4 and 1 ms: the p50s at least that (sleep never returns early), their ratio near 4.
  ASSERT_TRUE(t.latency_p50_ms && t.latency_reference_p50_ms);
  EXPECT_GE(*t.latency_p50_ms, 4.0);
  EXPECT_GE(*t.latency_reference_p50_ms, 1.0);
  EXPECT_GT(*t.latency_p50_ms / *t.latency_reference_p50_ms, 2.0);

  ResultStore alone_store(test::scratch_dir("run_loop") / "unpaired.sqlite");
  SleepingEncoder alone(1.0);
  options.latency_reference = nullptr;
  run_tasks(alone, {task}, alone_store, RunRecord(), options);
  auto alone_results = alone_store.latest_results();
  ASSERT_EQ(alone_results.size(), 1u);
  EXPECT_TRUE(alone_results[0].timing.latency_p50_ms.has_value());
  EXPECT_FALSE(alone_results[0].timing.latency_reference_p50_ms.has_value());
}
