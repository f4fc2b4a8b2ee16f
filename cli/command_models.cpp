// embeval models inspect DIR: what a checkpoint is and how embeval will run it.
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "harness/error.h"
#include "runners/bert/bert_encoder.h"
#include "runners/encoder_factory.h"

namespace po = boost::program_options;

namespace embeval::cli {

int command_models(int argc, char** argv) {
  std::string action, model;
  RunnerFlags runner;
  po::options_description opts("embeval models inspect DIR [options]");
  opts.add_options()
      ("help,h", "show this help")
      ("json", "print one JSON object instead of aligned lines");
  runner.add_to(opts);
  po::options_description hidden;
  hidden.add_options()("action", po::value(&action))("model", po::value(&model));
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("action", 1).add("model", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  po::notify(vm);
  if (action != "inspect") throw po::error(action.empty() ? "missing action; expected: inspect DIR"
                                                          : "unknown action \"" + action + "\"; expected: inspect DIR");
  if (model.empty()) throw po::error("missing model folder: embeval models inspect DIR");
  const RunnerOptions runner_options = runner.single_variant(runner.resolve(vm), model);

  std::unique_ptr<Encoder> encoder = make_encoder(model, runner_options);
  auto* bert = dynamic_cast<BertEncoder*>(encoder.get());
  nlohmann::ordered_json j;
  if (bert) {
    j = bert->describe();
  } else {
    const EncoderInfo& info = encoder->info();
    j = {{"spec", info.spec}, {"name", info.name}, {"dim", info.dim}, {"similarity", similarity_name(info.similarity)},
         {"fingerprint", info.fingerprint}};
  }
  if (vm.count("json")) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    std::string text;
    if (v.is_string()) {
      text = v.get<std::string>();
    } else if (v.is_object()) {
      for (auto p = v.begin(); p != v.end(); ++p)
        text += (text.empty() ? "" : ", ") + p.key() + ": " + p.value().dump();
      if (text.empty()) text = "none";
    } else if (v.is_array()) {
      for (const auto& x : v) text += (text.empty() ? "" : "; ") + (x.is_string() ? x.get<std::string>() : x.dump());
      if (text.empty()) continue;
    } else {
      text = v.dump();
    }
    std::printf("%-20s %s\n", (it.key() + ":").c_str(), text.c_str());
  }
  return 0;
}

}  // namespace embeval::cli
