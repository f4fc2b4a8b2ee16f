// embeval report: leaderboards (Markdown, HTML, CSV) and MTEB result files
// from a results database.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "build_info.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "harness/error.h"
#include "harness/result_store.h"
#include "reports/csv_report.h"
#include "reports/html_report.h"
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
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(out, ec);
  // The absolute path is what a user pastes into a browser or editor.
  std::fprintf(stderr, "wrote %s\n", (ec ? out : abs.lexically_normal().string()).c_str());
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

int command_report(int argc, char** argv) {
  std::string db, format, out, title;
  po::options_description opts("embeval report [options]");
  opts.add_options()
      ("help,h", "show this help")
      ("db", po::value(&db)->default_value("results.sqlite"), "results database")
      ("format,f", po::value(&format)->default_value("md"),
       "md (Markdown leaderboard), html (self-contained page), csv (one row per model, task and metric) or mteb "
       "(MTEB result files)")
      ("out,o", po::value(&out), "output file (md, html, csv; default stdout) or folder (mteb)")
      ("title", po::value(&title)->default_value("embeval leaderboard"), "report title");
  po::variables_map vm;
  if (!parse_options(argc, argv, opts, vm)) return 0;
  if (format != "md" && format != "html" && format != "csv" && format != "mteb")
    fail("unknown report format \"{}\"; formats: md, html, csv, mteb", format);
  if (format == "mteb" && out.empty()) fail("--format mteb needs --out DIR");

  auto store = ResultStore::open_existing(db);
  std::vector<StoredResult> results = store->latest_results();
  std::vector<StoredRun> runs = store->runs();
  // An empty report would look like a broken one: say why there is nothing.
  if (results.empty()) {
    if (runs.empty()) fail("{}: no runs recorded yet; run `embeval run --suite cmteb-mini` first", db);
    const StoredRun& last = runs.back();
    fail("{}: {} run(s) recorded but none finished a task (last run {} {}{}); nothing to report", db, runs.size(),
         last.id, last.status, last.error.empty() ? "" : ": " + last.error);
  }
  if (format == "mteb") {
    auto files = reports::write_mteb_results(results, out);
    std::fprintf(stderr, "wrote %zu files under %s\n", files.size(), out.c_str());
    return 0;
  }
  reports::Leaderboard board = reports::build_leaderboard(std::move(results), runs);
  for (const auto& n : board.notices) std::fprintf(stderr, "note: %s\n", n.c_str());
  if (format == "md") {
    write_text(out, reports::markdown_report(board, title));
  } else if (format == "csv") {
    write_text(out, reports::csv_report(board));
  } else {
    reports::HtmlOptions o;
    o.title = title;
    o.source = db;
    o.generated_at = utc_now();
    o.generator = fmt::format("embeval {} ({})", EMBEVAL_VERSION, EMBEVAL_GIT_REVISION);
    write_text(out, reports::html_report(board, o));
  }
  return 0;
}

}  // namespace embeval::cli
