// embeval embed: encode a JSONL file of texts into a NumPy .npy matrix.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "datasets/jsonl_reader.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "harness/error.h"
#include "runners/encoder_factory.h"

namespace po = boost::program_options;

namespace embeval::cli {

int command_embed(int argc, char** argv) {
  std::string model, input, output, role = "passage", prompt, task_name, task_type;
  RunnerFlags runner;
  po::options_description opts("embeval embed --model SPEC --input texts.jsonl --output vecs.npy [options]");
  std::string forms;
  for (const auto& f : encoder_spec_forms()) forms += "\n  " + f;
  opts.add_options()
      ("help,h", "show this help")
      ("model,m", po::value(&model)->required(), ("model spec:" + forms).c_str())
      ("input,i", po::value(&input)->required(), "JSONL file, one {\"text\": ...} per line")
      ("output,o", po::value(&output)->required(), "float32 .npy file [n, dim], rows in input order")
      ("role", po::value(&role)->default_value("passage"),
       "query, passage or none (MTEB's prompt type; none for STS, pair classification, classification and "
       "clustering texts): which of the model's prompts apply")
      ("prompt", po::value(&prompt), "task prompt for the role (as task.json's query_prompt would give)")
      ("task", po::value(&task_name), "task name, for models whose prompts are keyed by it (MTEB's lookup)")
      ("task-type", po::value(&task_type), "task type, for models whose prompts are keyed by it")
      ("quiet,q", "no summary line");
  runner.add_to(opts);
  po::variables_map vm;
  if (!parse_options(argc, argv, opts, vm)) return 0;
  const RunnerOptions resolved = runner.resolve(vm);
  if (role != "query" && role != "passage" && role != "none")
    throw po::error("--role must be query, passage or none, got \"" + role + "\"");

  std::vector<std::string> texts;
  data::JsonlReader reader(input);
  nlohmann::json row;
  while (reader.next(row)) texts.push_back(reader.get_string(row, "text"));
  // A calibrated method without --calib learns from the texts it encodes.
  const RunnerOptions runner_options = runner.single_variant(resolved, model, texts, input);

  std::unique_ptr<Encoder> encoder = make_encoder(model, runner_options);
  EncodeOptions options;
  options.role = role == "query" ? ROLE_QUERY : role == "passage" ? ROLE_PASSAGE : ROLE_NONE;
  options.prompt = prompt;
  options.task_name = task_name;
  options.task_type = task_type;
  auto t0 = std::chrono::steady_clock::now();
  Matrix m = encoder->encode(texts, options);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EMBEVAL_ASSERT(m.rows == static_cast<int64_t>(texts.size()) && m.cols == encoder->dim());
  write_npy(output, m);
  if (!vm.count("quiet")) {
    int64_t tokens = encoder->last_token_count();
    std::fprintf(stderr, "%s\n",
                 fmt::format("{} texts -> {} [{} x {}] with {} in {:.2f} s ({:.1f} texts/s{}){}{}", texts.size(), output,
                             m.rows, m.cols, encoder->spec(), secs, secs > 0 ? texts.size() / secs : 0.0,
                             tokens >= 0 ? fmt::format(", {} tokens", tokens) : "",
                             runner_options.calib_source.empty()
                                 ? ""
                                 : fmt::format(", calibrated on {}", runner_options.calib_source),
                             encoder->prompt_used(options).empty()
                                 ? ""
                                 : fmt::format(", prompt \"{}\"", encoder->prompt_used(options)))
                     .c_str());
  }
  return 0;
}

}  // namespace embeval::cli
