// embeval report: leaderboards and MTEB result files from a results database.
#include <cstdio>
#include <fstream>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "harness/cli/commands.h"
#include "harness/error.h"
#include "harness/result_store.h"
#include "reports/leaderboard.h"
#include "reports/markdown_report.h"
#include "reports/mteb_json_report.h"

namespace po = boost::program_options;

namespace embeval::cli {

namespace {

void write_text(const std::string& out, const std::string& text) {
  if (out.empty() || out == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  std::ofstream f(out, std::ios::binary);
  f << text;
  if (!f) fail("{}: cannot write", out);
  std::fprintf(stderr, "wrote %s\n", out.c_str());
}

}  // namespace

int command_report(int argc, char** argv) {
  std::string db, format, out, title;
  po::options_description opts("embeval report [options]");
  opts.add_options()
      ("help,h", "show this help")
      ("db", po::value(&db)->default_value("results.sqlite"), "results database")
      ("format,f", po::value(&format)->default_value("md"), "md (Markdown leaderboard) or mteb (MTEB result files)")
      ("out,o", po::value(&out), "output file (md; default stdout) or folder (mteb)")
      ("title", po::value(&title)->default_value("embeval leaderboard"), "report title");
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  po::notify(vm);
  if (format != "md" && format != "mteb") fail("unknown report format \"{}\"; formats: md, mteb", format);

  auto store = ResultStore::open_existing(db);
  std::vector<StoredResult> results = store->latest_results();
  if (format == "mteb") {
    if (out.empty()) fail("--format mteb needs --out DIR");
    if (results.empty()) fail("{}: no results recorded yet; run `embeval run` first", db);
    auto files = reports::write_mteb_results(results, out);
    std::fprintf(stderr, "wrote %zu files under %s\n", files.size(), out.c_str());
    return 0;
  }
  reports::Leaderboard board = reports::build_leaderboard(std::move(results));
  write_text(out, reports::markdown_report(board, store->runs(), title));
  return 0;
}

}  // namespace embeval::cli
