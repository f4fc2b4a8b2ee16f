// The HTML leaderboard in a real browser: headless Chromium (Debian's
// `chromium`, installed by scripts/setup.sh) opens the page of the fixed
// report database from disk, with no network, and the test checks the DOM it
// dumps after the page's script ran: rows, columns, the model named
// <script>alert(1)</script> present as text only, sorting and filtering
// driven through the URL fragment (the page keeps its view there), and that
// a screenshot and a PDF print are produced.
//
// Its own executable so ctest can label it "browser"; skipped (not failed)
// where no Chromium is installed. EMBEVAL_CHROMIUM names another binary.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness/result_store.h"
#include "reports/html_report.h"
#include "reports/leaderboard.h"
#include "tests/report_fixture.h"

namespace fs = std::filesystem;
using namespace embeval;

namespace {

std::string find_chromium() {
  if (const char* env = std::getenv("EMBEVAL_CHROMIUM")) return env;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');)
    for (const char* name : {"chromium", "chromium-browser", "google-chrome"})
      if (!dir.empty() && access((fs::path(dir) / name).c_str(), X_OK) == 0) return (fs::path(dir) / name).string();
  return "";
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Browser {
  std::string binary;
  fs::path work;

  // Runs Chromium once with a fresh profile; returns stdout. Its stderr
  // (D-Bus chatter on machines without a session bus) goes to a log file.
  std::string run(const std::string& args, const std::string& url) {
    static int n = 0;
    fs::path profile = work / ("profile-" + std::to_string(++n));
    fs::remove_all(profile);
    fs::create_directories(profile);
    fs::path log = work / ("chromium-" + std::to_string(n) + ".log");
    std::string cmd = "timeout 120 " + quote(binary) +
                      " --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking"
                      " --disable-component-update --disable-sync --user-data-dir=" + quote(profile.string()) + " " +
                      args + " " + quote(url) + " 2>" + quote(log.string());
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[65536];
    for (size_t k; p && (k = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, k);
    int rc = p ? pclose(p) : -1;
    fs::remove_all(profile);
    EXPECT_EQ(rc, 0) << cmd << "\n" << std::ifstream(log).rdbuf();
    return out;
  }
};

// data-model values of the rows of one table, in DOM order.
std::vector<std::string> row_models(const std::string& dom, const std::string& table_id) {
  size_t start = dom.find("id=\"" + table_id + "\"");
  size_t end = dom.find("</table>", start);
  std::vector<std::string> models;
  if (start == std::string::npos) return models;
  std::regex tr("<tr data-model=\"([^\"]*)\"");
  std::string body = dom.substr(start, end - start);
  for (auto it = std::sregex_iterator(body.begin(), body.end(), tr); it != std::sregex_iterator(); ++it)
    models.push_back((*it)[1]);
  return models;
}

// Attribute values come back serialised by Chromium; < and > may or may not
// be escaped there depending on the version, so compare the decoded text.
std::string decode(std::string s) {
  for (auto [from, to] : {std::pair<std::string, std::string>{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""},
                          {"&#39;", "'"}, {"&amp;", "&"}})
    for (size_t p; (p = s.find(from)) != std::string::npos;) s.replace(p, from.size(), to);
  return s;
}

std::vector<std::string> decoded(std::vector<std::string> v) {
  for (auto& s : v) s = decode(s);
  return v;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = 0; (p = s.find(what, p)) != std::string::npos; p += what.size()) ++n;
  return n;
}

const std::string A = "BAAI/bge-small-zh-v1.5", B = "BAAI/bge-small-zh-v1.5", C = "char-ngram-tfidf",
                  D = "<script>alert(1)</script>", E = "shibing624/text2vec-base-chinese";

}  // namespace

TEST(HtmlBrowser, RendersSortsFiltersAndScreenshots) {
  std::string chromium = find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "no chromium on PATH (scripts/setup.sh installs Debian's package)";
  fs::path work = fs::path(EMBEVAL_BINARY_DIR) / "test_scratch" / "browser";
  fs::remove_all(work);
  fs::create_directories(work);

  test::report_fixture(work / "fixture.sqlite");
  auto store = ResultStore::open_existing(work / "fixture.sqlite");
  reports::Leaderboard lb = reports::build_leaderboard(store->latest_results(), store->runs());
  reports::HtmlOptions o;
  o.title = "embeval leaderboard (test fixture)";
  o.source = "fixture.sqlite";
  o.generated_at = "2025-01-03 12:00 UTC";
  o.generator = "embeval test";
  fs::path page = work / "leaderboard.html";
  std::ofstream(page, std::ios::binary) << reports::html_report(lb, o);
  const std::string url = "file://" + fs::absolute(page).string();
  Browser browser{chromium, work};

  // 1. As opened: the script ran, five summary rows in Borda order, 14 columns.
  std::string dom = browser.run("--dump-dom", url);
  ASSERT_NE(dom.find("data-ready=\"1\""), std::string::npos) << "the page's script did not finish:\n"
                                                              << dom.substr(0, 2000);
  EXPECT_EQ(decoded(row_models(dom, "t-summary")), (std::vector<std::string>{A, B, D, E, C}));
  size_t head = dom.find("id=\"t-summary\""), head_end = dom.find("</thead>", head);
  std::string thead = dom.substr(head, head_end - head);
  std::regex th("<th[ >]");
  EXPECT_EQ(std::distance(std::sregex_iterator(thead.begin(), thead.end(), th), std::sregex_iterator()), 13);
  // 10 fixed columns + Retrieval, STS, Clustering
  // The hostile name is text: one <script> element (the page's own), and the
  // name's characters escaped in text content.
  EXPECT_EQ(count(dom, "<script"), 1u);
  EXPECT_NE(dom.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(decoded(row_models(dom, "t-performance")).size(), 5u);
  EXPECT_EQ(count(dom, "class=\"notice\""), 4u);  // failed run, incomplete model, baseline, non-C-MTEB tasks

  // 2. Sorted by Mean (Task), ascending: blanks last (D lacks a task).
  dom = browser.run("--dump-dom", url + "#sort=t-summary:mean-task:asc");
  EXPECT_EQ(decoded(row_models(dom, "t-summary")), (std::vector<std::string>{C, E, B, A, D}));
  EXPECT_TRUE(std::regex_search(dom, std::regex("<th[^>]*data-key=\"mean-task\"[^>]*aria-sort=\"ascending\"")));
  dom = browser.run("--dump-dom", url + "#sort=t-summary:mean-task:desc");
  EXPECT_EQ(decoded(row_models(dom, "t-summary")), (std::vector<std::string>{A, B, E, C, D}));
  // Another table sorts on its own: the STS section by BQ-mini, descending (.71 .70 .50 .40 .20).
  dom = browser.run("--dump-dom", url + "#sort=t-type-STS:task-BQ-mini:desc");
  EXPECT_EQ(decoded(row_models(dom, "t-type-STS")), (std::vector<std::string>{B, A, E, C, D}));
  EXPECT_EQ(decoded(row_models(dom, "t-summary")), (std::vector<std::string>{A, B, D, E, C}));

  // 3. Filters: model name, task type, spec.
  dom = browser.run("--dump-dom", url + "#model=bge&type=STS&spec=sq-w8a8");
  std::regex hidden_row("<tr data-model=\"([^\"]*)\" data-variant=\"([^\"]*)\" class=\"hidden\"");
  size_t s0 = dom.find("id=\"t-summary\""), s1 = dom.find("</table>", s0);
  std::string summary = dom.substr(s0, s1 - s0);
  EXPECT_EQ(std::distance(std::sregex_iterator(summary.begin(), summary.end(), hidden_row), std::sregex_iterator()), 4);
  EXPECT_NE(dom.find("showing 1 of 5 rows"), std::string::npos);
  EXPECT_NE(dom.find("id=\"type-Retrieval\" data-type=\"Retrieval\" class=\"hidden\""), std::string::npos);
  EXPECT_EQ(dom.find("id=\"type-STS\" data-type=\"STS\" class=\"hidden\""), std::string::npos);

  // 4. A screenshot and a print.
  fs::path png = work / "leaderboard.png", pdf = work / "leaderboard.pdf";
  browser.run("--hide-scrollbars --window-size=1440,1800 --screenshot=" + quote(png.string()), url);
  ASSERT_TRUE(fs::exists(png));
  std::string head8(8, '\0');
  std::ifstream(png, std::ios::binary).read(head8.data(), 8);
  EXPECT_EQ(head8, "\x89PNG\r\n\x1a\n");
  EXPECT_GT(fs::file_size(png), 20000u);  // a blank page is a few KB
  browser.run("--no-pdf-header-footer --print-to-pdf=" + quote(pdf.string()), url);
  ASSERT_TRUE(fs::exists(pdf));
  std::string pdf_head(5, '\0');
  std::ifstream(pdf, std::ios::binary).read(pdf_head.data(), 5);
  EXPECT_EQ(pdf_head, "%PDF-");
  std::printf("[ browser ] screenshot %s (%ju bytes), print %s (%ju bytes)\n", png.c_str(),
              static_cast<uintmax_t>(fs::file_size(png)), pdf.c_str(), static_cast<uintmax_t>(fs::file_size(pdf)));
}
