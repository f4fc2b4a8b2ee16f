// embeval: evaluate and benchmark text-embedding models on MTEB-style tasks.
// The only place that wires datasets, tasks, runners and reports together.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include <boost/program_options/errors.hpp>

#include "build_info.h"
#include "cli/commands.h"
#include "harness/interrupt.h"
#include "runners/torch_runtime.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: embeval <command> [options]\n\n"
               "commands:\n"
               "  run      evaluate a model on tasks and record the results\n"
               "  tasks    list tasks (of a suite or folders) and suites\n"
               "  report   write the leaderboard (md, html, csv) or MTEB result files (mteb) from a results database\n"
               "  tokenize a checkpoint's tokenizer over texts.jsonl: the ids sentence-transformers would use\n"
               "  embed    encode a JSONL file of texts into a .npy matrix\n"
               "  models   inspect a checkpoint folder (models inspect DIR)\n"
               "  quantize quantize a checkpoint folder (GPTQ, AWQ, SmoothQuant, round-to-nearest) and save it\n"
               "  train    train a small embedding model from contrastive pairs\n\n"
               "embeval <command> --help shows the options of a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("embeval %s (%s, %s)\n", EMBEVAL_VERSION, EMBEVAL_GIT_REVISION, EMBEVAL_BUILD_TYPE);
    return 0;
  }
  std::string command = argv[1];
  embeval::tune_malloc_for_inference();
  // Before any thread exists (harness/interrupt.h says why); `run` is the
  // command that stops cleanly on the first signal.
  if (command == "run") embeval::install_interrupt_handlers();
  try {
    if (command == "run") return embeval::cli::command_run(argc - 1, argv + 1);
    if (command == "tasks") return embeval::cli::command_tasks(argc - 1, argv + 1);
    if (command == "report") return embeval::cli::command_report(argc - 1, argv + 1);
    if (command == "tokenize") return embeval::cli::command_tokenize(argc - 1, argv + 1);
    if (command == "embed") return embeval::cli::command_embed(argc - 1, argv + 1);
    if (command == "models") return embeval::cli::command_models(argc - 1, argv + 1);
    if (command == "quantize") return embeval::cli::command_quantize(argc - 1, argv + 1);
    if (command == "train") return embeval::cli::command_train(argc - 1, argv + 1);
    std::fprintf(stderr, "embeval: error: unknown command \"%s\"; commands: run, tasks, report, tokenize, embed, models, quantize, train\n",
                 command.c_str());
    return 2;
  } catch (const embeval::Interrupted& e) {
    std::fprintf(stderr, "embeval: %s: what finished before it is recorded; rerun the same command to resume\n", e.what());
    return 128 + e.signal();
  } catch (const boost::program_options::error& e) {
    std::fprintf(stderr, "embeval %s: error: %s (see embeval %s --help)\n", command.c_str(), e.what(),
                 command.c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "embeval: error: out of memory\n");
    return 3;
  } catch (const std::exception& e) {
    // User errors are one line by construction; keep only the first line of anything else.
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    std::fprintf(stderr, "embeval: error: %s\n", msg.c_str());
    return 2;
  }
}
