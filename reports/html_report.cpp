#include "reports/html_report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "reports/score_format.h"

namespace embeval::reports {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

const char* const CSS = R"css(
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#eaeef2;--head:#f6f8fa;--accent:#0969da;--good:#1a7f37;--bad:#cf222e}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#fff;font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans","Liberation Sans","DejaVu Sans",sans-serif}
main{max-width:1440px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:1.86em;margin:0 0 2px}
h2{font-size:1.36em;margin:34px 0 6px;padding-bottom:5px;border-bottom:1px solid var(--line)}
h3{font-size:1.07em;margin:18px 0 6px}
a{color:var(--accent);text-decoration:none}
.sub,.note{color:var(--muted)}
.note{margin:2px 0 10px;max-width:86em}
nav.toc{margin:10px 0 4px;display:flex;flex-wrap:wrap;gap:4px 16px}
.notice{border-left:4px solid #d4a72c;background:#fff8c5;padding:8px 12px;margin:10px 0;border-radius:0 6px 6px 0}
.empty{border:1px solid var(--line);background:var(--head);padding:18px 20px;border-radius:8px;font-size:1.15em;margin:24px 0}
.filters{position:sticky;top:0;z-index:3;background:rgba(255,255,255,.97);border-bottom:1px solid var(--line);padding:8px 0;margin-top:8px;display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center}
.filters label{color:var(--muted);font-size:.93em}
.filters input,.filters select,button{font:inherit;font-size:.93em;padding:3px 8px;border:1px solid var(--line);border-radius:6px;background:#fff;color:var(--fg)}
button{cursor:pointer;background:var(--head)}
button:hover{border-color:var(--accent);color:var(--accent)}
#f-count{color:var(--muted);font-size:.93em}
.scroll{display:inline-block;vertical-align:top;max-width:100%;overflow-x:auto;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:5px 8px;border-bottom:1px solid var(--soft);text-align:right;white-space:nowrap}
th{white-space:normal;min-width:3.5em}
tbody tr:last-child td{border-bottom:0}
th{background:var(--head);font-weight:600;vertical-align:bottom;border-bottom:1px solid var(--line)}
th .n{color:var(--muted);font-weight:normal}
.l{text-align:left}
th.sortable{cursor:pointer;user-select:none}
th.sortable:hover{color:var(--accent)}
th.sortable::before,th.sortable.l::after{content:"\2195";color:#b6bec7;font-size:.8em;margin-right:3px}
th.sortable.l::before{content:none}
th.sortable.l::after{margin:0 0 0 3px}
th[aria-sort=ascending]::before,th.l[aria-sort=ascending]::after{content:"\25B2";color:var(--accent)}
th[aria-sort=descending]::before,th.l[aria-sort=descending]::after{content:"\25BC";color:var(--accent)}
th.l[aria-sort]::before{content:none}
tbody tr:hover td{background-color:#f3f6fa}
td.best{font-weight:700}
td.rank{font-weight:700;text-align:center}
td.m{white-space:normal;min-width:12em;max-width:22em;text-align:left}
.model{font-weight:600;overflow-wrap:anywhere}
.spec{display:block;color:var(--muted);font-weight:normal;font-size:.86em;overflow-wrap:anywhere}
.pin{position:sticky;left:0;z-index:1;background:#fff;width:4.6em;min-width:4.6em;max-width:4.6em}
.pin2{position:sticky;left:4.6em;z-index:1;background:#fff;box-shadow:inset -1px 0 0 var(--line)}
th.pin,th.pin2{background:var(--head);z-index:2}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.86em}
.pos{color:var(--good)}
.neg{color:var(--bad)}
.ref{color:var(--muted);font-style:italic}
.tag{display:inline-block;font-size:.8em;padding:0 6px;border-radius:10px;background:#ddf4ff;color:#0550ae;margin-left:6px;font-weight:600}
details{border:1px solid var(--line);border-radius:8px;margin:8px 0}
details>summary{cursor:pointer;padding:7px 12px;font-weight:600}
details>summary .sub{font-weight:normal;margin-left:8px}
details>.scroll{display:block;border:0;border-top:1px solid var(--line);border-radius:0 0 8px 8px}
.chart{border:1px solid var(--line);border-radius:8px;padding:8px;display:inline-block;max-width:100%}
.chart svg{display:block;max-width:100%;height:auto}
.chart text{font-size:12px;fill:var(--fg)}
.chart .axis text{fill:var(--muted)}
.chart .grid{stroke:var(--soft)}
td.wrap{white-space:normal;min-width:14em;max-width:30em}
td.hash{white-space:normal;width:17em;min-width:17em}
.runs{display:flex;flex-wrap:wrap;gap:12px}
.run{border:1px solid var(--line);border-radius:8px;padding:8px 14px;flex:1 1 420px;max-width:720px}
.run h4{margin:2px 0 6px;font-size:1em}
.run dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
.run dt{color:var(--muted)}
.run dd{margin:0;overflow-wrap:anywhere}
.hidden{display:none!important}
footer{color:var(--muted);margin-top:40px;font-size:.86em}
@media print{
 @page{size:A4 landscape;margin:10mm}
 body{font-size:9.5px}
 main{max-width:none;padding:0}
 .filters,nav.toc,.noprint{display:none!important}
 .scroll{display:block;overflow:visible;border:0}
 th,td{padding:2px 5px;white-space:normal}
 .pin,.pin2{position:static;box-shadow:none}
 th.sortable::before,th.sortable::after{content:none!important}
 .run{break-inside:avoid}
 thead{display:table-header-group}
 tr,.chart,.notice{break-inside:avoid}
 h2,h3{break-after:avoid}
 details{border:0}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
)css";

// Sorting and filtering read the DOM only: no data is embedded in the script.
// The view (sort and filters) lives in the URL fragment, e.g.
// #sort=t-summary:mean-task:desc&model=bge&type=STS&spec=fp32, so a link
// reproduces it and a headless browser can be driven without clicks.
const char* const SCRIPT = R"js(
(function () {
  'use strict';
  var state = { sort: '', model: '', type: '', spec: '' };
  function key(td, numeric) {
    if (!td) return null;
    var v = td.getAttribute('data-v');
    if (numeric) return v === null || v === '' ? null : parseFloat(v);
    if (v === null) v = td.textContent.trim();
    return v === '' ? null : v.toLowerCase();
  }
  function column(table, k) {
    var cells = table.tHead.rows[0].cells;
    for (var i = 0; i < cells.length; i++) if (cells[i].getAttribute('data-key') === k) return i;
    return -1;
  }
  function sortTable(table, k, dir) {
    var col = column(table, k);
    if (col < 0) return false;
    var th = table.tHead.rows[0].cells[col], numeric = th.getAttribute('data-num') === '1';
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r, i) { r.setAttribute('data-i', i); });
    rows.sort(function (a, b) {
      var va = key(a.cells[col], numeric), vb = key(b.cells[col], numeric);
      var ia = +a.getAttribute('data-i'), ib = +b.getAttribute('data-i');
      if (va === null || vb === null) return va === vb ? ia - ib : (va === null ? 1 : -1);
      var c = numeric ? va - vb : va.localeCompare(vb);
      if (c === 0) return ia - ib;
      return dir === 'asc' ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); r.removeAttribute('data-i'); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir === 'asc' ? 'ascending' : 'descending');
    return true;
  }
  function save() {
    var parts = [];
    ['sort', 'model', 'type', 'spec'].forEach(function (k) {
      if (state[k]) parts.push(k + '=' + encodeURIComponent(state[k]));
    });
    try { history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname + location.search); } catch (e) {}
  }
  function applyFilters() {
    var m = state.model.toLowerCase(), shown = {}, all = {};
    document.querySelectorAll('[data-model]').forEach(function (el) {
      var name = el.getAttribute('data-model');
      var ok = (!m || name.toLowerCase().indexOf(m) >= 0) && (!state.spec || el.getAttribute('data-variant') === state.spec);
      el.classList.toggle('hidden', !ok);
      if (el.closest('#t-summary')) { all[name + '|' + el.getAttribute('data-variant')] = 1; if (ok) shown[name + '|' + el.getAttribute('data-variant')] = 1; }
    });
    document.querySelectorAll('[data-type]').forEach(function (el) {
      el.classList.toggle('hidden', !!state.type && el.getAttribute('data-type') !== state.type);
    });
    var count = document.getElementById('f-count');
    if (count) count.textContent = 'showing ' + Object.keys(shown).length + ' of ' + Object.keys(all).length + ' rows';
  }
  function load() {
    state = { sort: '', model: '', type: '', spec: '' };
    location.hash.replace(/^#/, '').split('&').forEach(function (p) {
      var i = p.indexOf('=');
      if (i > 0 && p.slice(0, i) in state) state[p.slice(0, i)] = decodeURIComponent(p.slice(i + 1));
    });
    ['model', 'type', 'spec'].forEach(function (k) {
      var el = document.getElementById('f-' + k);
      if (el) el.value = state[k];
    });
    applyFilters();
    if (state.sort) {
      var s = state.sort.split(':'), table = document.getElementById(s[0]);
      if (!table || !sortTable(table, s[1], s[2] === 'asc' ? 'asc' : 'desc')) state.sort = '';
    }
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      if (!th.hasAttribute('data-key')) return;
      th.classList.add('sortable');
      th.title = th.title || 'sort';
      th.addEventListener('click', function () {
        var cur = th.getAttribute('aria-sort');
        var dir = cur === 'descending' ? 'asc' : cur === 'ascending' ? 'desc' : (th.getAttribute('data-dir') || 'desc');
        sortTable(table, th.getAttribute('data-key'), dir);
        state.sort = table.id + ':' + th.getAttribute('data-key') + ':' + dir;
        save();
      });
    });
  });
  ['model', 'type', 'spec'].forEach(function (k) {
    var el = document.getElementById('f-' + k);
    if (!el) return;
    el.addEventListener('input', function () { state[k] = el.value; applyFilters(); save(); });
  });
  var reset = document.getElementById('f-reset');
  if (reset) reset.addEventListener('click', function () { state = { sort: '', model: '', type: '', spec: '' }; save(); location.reload(); });
  var toggle = document.getElementById('f-details');
  if (toggle) toggle.addEventListener('click', function () {
    var ds = document.querySelectorAll('details'), open = !Array.prototype.every.call(ds, function (d) { return d.open; });
    ds.forEach(function (d) { d.open = open; });
  });
  window.addEventListener('hashchange', load);
  // Printing shows every task's detail; the reader's choice comes back after.
  var closed = [];
  window.addEventListener('beforeprint', function () {
    closed = Array.prototype.filter.call(document.querySelectorAll('details'), function (d) { return !d.open; });
    closed.forEach(function (d) { d.open = true; });
  });
  window.addEventListener('afterprint', function () { closed.forEach(function (d) { d.open = false; }); });
  load();
  document.documentElement.setAttribute('data-ready', '1');
})();
)js";

std::string num(double v) { return fmt::format("{}", v); }

struct Th {
  std::string label;  // HTML
  std::string key;    // data-key; empty: not sortable
  bool numeric;       // sort as numbers (data-v), else as text; numbers align right
  std::string dir;    // direction of the first click
  std::string attrs;  // extra attributes, e.g. data-type
  std::string title;  // tooltip
  std::string cls;    // extra classes
  Th(std::string label_, std::string key_, bool numeric_ = true, std::string dir_ = "desc", std::string attrs_ = "",
     std::string title_ = "", std::string cls_ = "")
      : label(std::move(label_)), key(std::move(key_)), numeric(numeric_), dir(std::move(dir_)),
        attrs(std::move(attrs_)), title(std::move(title_)), cls(std::move(cls_)) {}
};

std::string thead(const std::vector<Th>& cols) {
  std::string h = "<thead><tr>";
  for (const auto& c : cols) {
    h += "<th";
    std::string cls = c.numeric ? c.cls : c.cls.empty() ? "l" : "l " + c.cls;
    if (!cls.empty()) h += " class=\"" + cls + "\"";
    if (!c.key.empty())
      h += " data-key=\"" + html_escape(c.key) + "\" data-num=\"" + (c.numeric ? "1" : "0") + "\" data-dir=\"" + c.dir + "\"";
    if (!c.title.empty()) h += " title=\"" + html_escape(c.title) + "\"";
    h += c.attrs + ">" + c.label + "</th>";
  }
  return h + "</tr></thead>\n";
}

std::string td_num(const std::string& text, std::optional<double> key, const std::string& extra = "") {
  std::string s = "<td";
  if (key && std::isfinite(*key)) s += " data-v=\"" + num(*key) + "\"";
  return s + extra + ">" + html_escape(text) + "</td>";
}

std::string td_text(const std::string& text, const std::string& cls = "l") {
  return "<td class=\"" + cls + "\">" + html_escape(text) + "</td>";
}

// Score columns look like the MTEB leaderboard: the best value bold and a
// light green wash that deepens with the score, scaled within the column.
std::vector<std::string> score_column(const std::vector<std::optional<double>>& values, const std::string& extra = "") {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& v : values)
    if (v && std::isfinite(*v)) lo = std::min(lo, *v), hi = std::max(hi, *v);
  std::vector<std::string> cells;
  for (const auto& v : values) {
    if (!v || !std::isfinite(*v)) {
      cells.push_back("<td" + extra + "></td>");
      continue;
    }
    // A column whose values are all equal (or a single row) has nothing to compare: no wash, no bold.
    std::string attrs = extra;
    if (hi > lo) {
      attrs = fmt::format(" style=\"background-color:rgba(46,160,67,{:.3f})\"", 0.06 + 0.30 * (*v - lo) / (hi - lo)) + extra;
      if (*v == hi) attrs = " class=\"best\"" + attrs;
    }
    cells.push_back(td_num(format_score(v), *v * 100.0, attrs));
  }
  return cells;
}

std::string slug(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += std::isalnum(c) || c == '-' || c == '_' ? static_cast<char>(c) : '-';
  return out;
}

std::string row_open(const LeaderboardRow& row) {
  return "<tr data-model=\"" + html_escape(row.model.info.name) + "\" data-variant=\"" +
         html_escape(variant_label(row.model.info)) + "\">";
}

std::string model_cell(const LeaderboardRow& row, const std::string& cls = "") {
  const EncoderInfo& m = row.model.info;
  return "<td class=\"m" + (cls.empty() ? "" : " " + cls) + "\" data-v=\"" + html_escape(model_label(m)) + "\"><span class=\"model\">" +
         html_escape(model_label(m)) + "</span><span class=\"spec mono\">" + html_escape(m.spec) + "</span></td>";
}

std::string type_attr(const std::string& type) { return " data-type=\"" + html_escape(type) + "\""; }

// "PairClassification" may wrap between "Pair" and "Classification" in a narrow header.
std::string camel_breakable(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i > 0 && std::isupper(static_cast<unsigned char>(text[i])) && std::islower(static_cast<unsigned char>(text[i - 1])))
      out += "<wbr>";
    out += html_escape(std::string(1, text[i]));
  }
  return out;
}

void summary(const Leaderboard& lb, std::string& h) {
  h += "<section id=\"summary\"><h2>Summary</h2>\n<p class=\"note\">Rank is the MTEB leaderboard's Borda rank: on "
       "each task a model earns a point for every model ranked below it (ties share; a model without the task ranks "
       "below all and earns nothing there), and the totals are ranked. Scores are main scores x100; Mean (TaskType) "
       "averages the per-type means. A blank means no result for that task, or an average that would need one.</p>\n";
  h += "<div class=\"scroll\"><table id=\"t-summary\" class=\"sortable\">";
  std::vector<Th> cols = {
      {"Rank", "rank", true, "asc", "", "Borda rank (MTEB)", "pin"},
      {"Model", "model", false, "asc", "", "", "pin2"},
      {"Spec", "spec", false, "asc", "", "precision or quantization"},
      {"Params", "params", true, "desc", "", "number of parameters"},
      {"Dim", "dim", true, "desc", "", "embedding dimension"},
      {"Max tokens", "max-tokens", true, "desc"},
      {"Memory (MB)", "memory", true, "asc", "", "peak memory while evaluating"},
      {"Tasks", "tasks", true, "desc", "", "tasks with a result"},
      {"Mean (Task)", "mean-task", true},
      {"Mean (TaskType)", "mean-type", true},
  };
  for (const auto& t : lb.types)
    cols.push_back({camel_breakable(t.type) + " <span class=\"n\">(" + std::to_string(t.n_tasks) + ")</span>",
                    "type-" + t.type, true, "desc", type_attr(t.type), "mean of the " + t.type + " tasks"});
  h += thead(cols) + "<tbody>\n";

  std::vector<std::vector<std::string>> score_cols;
  auto column = [&](auto get, const std::string& extra = "") {
    std::vector<std::optional<double>> xs;
    for (const auto& row : lb.rows) xs.push_back(get(row));
    score_cols.push_back(score_column(xs, extra));
  };
  column([](const LeaderboardRow& r) { return r.mean_task; });
  column([](const LeaderboardRow& r) { return r.mean_type; });
  for (const auto& t : lb.types)
    column([&](const LeaderboardRow& r) { return r.type_mean.at(t.type); }, type_attr(t.type));

  for (size_t i = 0; i < lb.rows.size(); ++i) {
    const LeaderboardRow& row = lb.rows[i];
    const EncoderInfo& m = row.model.info;
    h += row_open(row);
    h += td_num(std::to_string(row.rank), row.rank, " class=\"rank pin\"");
    h += model_cell(row, "pin2");
    h += "<td class=\"l\"><code>" + html_escape(variant_label(m)) + "</code></td>";
    h += td_num(format_params(m.n_parameters), m.n_parameters > 0 ? std::optional<double>(m.n_parameters) : std::nullopt);
    h += td_num(m.dim > 0 ? std::to_string(m.dim) : "", m.dim > 0 ? std::optional<double>(m.dim) : std::nullopt);
    h += td_num(m.max_tokens > 0 ? std::to_string(m.max_tokens) : "",
                m.max_tokens > 0 ? std::optional<double>(m.max_tokens) : std::nullopt);
    int64_t mem = row_peak_memory(row);
    h += td_num(format_mb(mem), mem > 0 ? std::optional<double>(mem) : std::nullopt);
    h += td_num(fmt::format("{}/{}", row.n_tasks, lb.tasks.size()), row.n_tasks);
    for (const auto& col : score_cols) h += col[i];
    h += "</tr>\n";
  }
  h += "</tbody></table></div></section>\n";
}

void performance(const Leaderboard& lb, std::string& h) {
  h += "<section id=\"performance\"><h2>Performance</h2>\n<p class=\"note\">Throughput is encoded texts (tokens) per "
       "second of encoding, over all tasks. Latency is one text at a time (batch size 1), from the task with the most "
       "samples. Memory is the peak of the process, or of the accelerator where measured. Threads are the encoder "
       "threads of the runs.</p>\n";
  h += "<div class=\"scroll\"><table id=\"t-performance\" class=\"sortable\">";
  h += thead({{"Model", "model", false, "asc"},
              {"Device", "device", false, "asc"},
              {"Threads", "threads", true, "desc"},
              {"texts/s", "texts-per-s", true},
              {"tokens/s", "tokens-per-s", true},
              {"p50 ms", "p50", true, "asc", "", "latency at batch size 1, median"},
              {"p95 ms", "p95", true, "asc", "", "latency at batch size 1, 95th percentile"},
              {"Peak memory (MB)", "memory", true, "asc"},
              {"Mean (Task)", "mean-task", true},
              {"Pareto", "pareto", false, "asc", "", "no other model is both faster and better"}});
  h += "<tbody>\n";
  std::vector<bool> pareto(lb.rows.size(), false);
  for (const auto& p : lb.points) pareto[p.row] = p.pareto;
  double busiest = 0;
  for (size_t i = 0; i < lb.rows.size(); ++i) {
    const LeaderboardRow& row = lb.rows[i];
    h += row_open(row) + model_cell(row) + td_text(row.model.info.device);
    h += td_num(fmt::format("{}", fmt::join(row.threads, ", ")),
                row.threads.empty() ? std::nullopt : std::optional<double>(row.threads.back()));
    const std::string mark = row.timed_on_busy_machine() ? "*" : "";
    if (row.timed_on_busy_machine()) busiest = std::max(busiest, *row.background_cpu_share);
    h += td_num(format_rate(row.items_per_second) + mark, row.items_per_second);
    h += td_num(format_rate(row.tokens_per_second), row.tokens_per_second);
    h += td_num(format_ms(row.latency_p50_ms) + mark, row.latency_p50_ms);
    h += td_num(format_ms(row.latency_p95_ms), row.latency_p95_ms);
    int64_t mem = row_peak_memory(row);
    h += td_num(format_mb(mem), mem > 0 ? std::optional<double>(mem) : std::nullopt);
    h += td_num(format_score(row.mean_task), row.mean_task ? std::optional<double>(*row.mean_task * 100) : std::nullopt);
    h += pareto[i] ? "<td class=\"l\"><span class=\"tag\">front</span></td>" : "<td class=\"l\"></td>";
    h += "</tr>\n";
  }
  h += "</tbody></table></div>";
  if (busiest > 0)
    h += fmt::format("<p class=\"note\">* Timed while other processes kept up to {:.0f}% of the CPUs busy: slower and "
                     "noisier than on an idle machine; compare speeds from runs on an idle one.</p>",
                     100 * busiest);
  h += "</section>\n";
}

std::string delta_cell(std::optional<double> d, const std::string& extra = "") {
  if (!d || !std::isfinite(*d)) return "<td" + extra + "></td>";
  std::string text = format_delta(d);
  // Colour strength follows the size of the change, saturating at 5 points.
  double a = std::min(1.0, std::abs(*d) * 100.0 / 5.0);
  std::string style;
  if (text != "0.00")
    style = *d > 0 ? fmt::format(" class=\"pos\" style=\"background-color:rgba(46,160,67,{:.3f})\"", 0.06 + 0.3 * a)
                   : fmt::format(" class=\"neg\" style=\"background-color:rgba(207,34,46,{:.3f})\"", 0.06 + 0.3 * a);
  return td_num(text, *d * 100.0, style + extra);
}

void quantization(const Leaderboard& lb, std::string& h) {
  if (lb.quant_groups.empty()) return;
  const bool fidelity = lb.has_fidelity(), paired = lb.has_paired_latency();
  h += "<section id=\"quantization\"><h2>Quantization</h2>\n<p class=\"note\">Every spec of a model against its fp32 "
       "run (same device where recorded): score changes in points (x100, green better, red worse), speed-up in "
       "texts/s and peak memory ratio";
  if (paired)
    h += "; batch-1 time is one text's p50 over fp32's, both timed in turn on the same texts (the median over the "
         "tasks; below 1x is faster)";
  h += fidelity ? "; fidelity is the mean cosine similarity of each embedding to the fp32 one (after the slash: the "
                  "least of any one embedding).</p>\n"
                : ".</p>\n";
  int n = 0;
  for (const auto& g : lb.quant_groups) {
    std::string id = "t-quant-" + std::to_string(++n);
    h += "<h3>" + html_escape(g.name) + (g.revision.empty() ? "" : " <span class=\"sub\">@ " + html_escape(g.revision) + "</span>") + "</h3>\n";
    if (!g.variants.empty() && !g.variants.front().reference)
      h += "<p class=\"note\">No fp32 run of this model is recorded, so there is nothing to compare with.</p>\n";
    h += "<div class=\"scroll\"><table id=\"" + id + "\" class=\"sortable\">";
    std::vector<Th> cols = {{"Spec", "spec", false, "asc"},
                            {"Device", "device", false, "asc"},
                            {"Mean (Task)", "mean-task", true},
                            {"&Delta; Mean (Task)", "d-mean-task", true},
                            {"&Delta; Mean (TaskType)", "d-mean-type", true}};
    for (const auto& t : lb.types)
      cols.push_back({"&Delta; " + camel_breakable(t.type), "d-type-" + t.type, true, "desc", type_attr(t.type)});
    if (fidelity) cols.push_back({"Fidelity", "fidelity", true, "desc", "", "mean cosine to the fp32 embedding"});
    cols.push_back({"Speed-up", "speedup", true});
    if (paired)
      cols.push_back({"Batch-1 time", "latency-ratio", true, "asc", "", "single-text p50 / fp32's, timed in turn"});
    cols.push_back({"Memory", "memory", true, "asc", "", "peak memory / fp32's"});
    h += thead(cols) + "<tbody>\n";
    for (const auto& v : g.variants) {
      const LeaderboardRow& row = lb.rows[v.row];
      const bool self = v.reference && *v.reference == v.row;
      h += row_open(row);
      h += "<td class=\"l\" data-v=\"" + html_escape(variant_label(row.model.info)) + "\"><code>" +
           html_escape(variant_label(row.model.info)) + "</code>" + (self ? " <span class=\"ref\">reference</span>" : "") +
           "<span class=\"spec mono\">" + html_escape(row.model.info.spec) + "</span></td>";
      h += td_text(row.model.info.device);
      h += td_num(format_score(row.mean_task), row.mean_task ? std::optional<double>(*row.mean_task * 100) : std::nullopt);
      h += delta_cell(v.mean_task_delta) + delta_cell(v.mean_type_delta);
      for (const auto& t : lb.types) {
        auto it = v.type_delta.find(t.type);
        h += delta_cell(it == v.type_delta.end() ? std::nullopt : it->second, type_attr(t.type));
      }
      if (fidelity) {
        std::string text = row.fidelity ? fmt::format("{:.4f}", *row.fidelity) : "";
        if (row.fidelity && row.fidelity_min) text += fmt::format(" / {:.4f}", *row.fidelity_min);
        if (row.fidelity && row.n_fidelity < row.n_tasks) text += fmt::format(" ({}/{} tasks)", row.n_fidelity, row.n_tasks);
        h += td_num(text, row.fidelity);
      }
      h += td_num(format_ratio(v.speedup), v.speedup);
      if (paired) h += td_num(format_ratio(v.latency_ratio), v.latency_ratio);
      h += td_num(format_ratio(v.memory_ratio), v.memory_ratio);
      h += "</tr>\n";
    }
    h += "</tbody></table></div>\n";
  }
  h += "</section>\n";
}

// Axis ticks at 1, 2, 5 x 10^k, close to `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target) {
  double raw = (hi - lo) / std::max(1, target), mag = std::pow(10.0, std::floor(std::log10(raw))), step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

void chart(const Leaderboard& lb, std::string& h) {
  h += "<section id=\"chart\"><h2>Score vs throughput</h2>\n<p class=\"note\">Mean (Task) against encoding "
       "throughput (log scale), for models with every task and a measured throughput. Filled points are the Pareto "
       "front: no other model is both faster and better; the dashed line bounds what they dominate.</p>\n";
  if (lb.points.empty()) {
    h += "<p class=\"notice\">No model has both a complete Mean (Task) and a measured throughput yet, so there is "
         "nothing to plot.</p></section>\n";
    return;
  }
  const double W = 820, H = 440, left = 64, right = 24, top = 18, bottom = 54;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& p : lb.points) {
    double x = std::log10(std::max(p.items_per_second, 1e-9));
    xlo = std::min(xlo, x), xhi = std::max(xhi, x);
    ylo = std::min(ylo, p.score * 100), yhi = std::max(yhi, p.score * 100);
  }
  xlo = std::floor(xlo), xhi = std::ceil(xhi);
  if (xhi <= xlo) xhi = xlo + 1;
  double ypad = std::max(0.5, (yhi - ylo) * 0.08);
  ylo -= ypad, yhi += ypad;
  auto sx = [&](double ips) { return left + (std::log10(std::max(ips, 1e-9)) - xlo) / (xhi - xlo) * (W - left - right); };
  auto sy = [&](double score) { return top + (yhi - score * 100) / (yhi - ylo) * (H - top - bottom); };

  h += fmt::format("<div class=\"chart\"><svg id=\"score-speed\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" "
                   "height=\"{1}\" viewBox=\"0 0 {0} {1}\" role=\"img\" aria-label=\"Mean (Task) against texts per "
                   "second\">\n",
                   W, H);
  h += "<g class=\"axis\">";
  for (double e = xlo; e <= xhi + 1e-9; e += 1) {
    for (double m : {1.0, 2.0, 5.0}) {
      double v = m * std::pow(10.0, e), x = sx(v);
      if (x > W - right + 0.5) break;
      bool major = m == 1.0;
      if (!major && xhi - xlo > 3) continue;
      h += fmt::format("<line class=\"grid\" x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\"{3}/>", x, top,
                       H - bottom, major ? "" : " stroke-dasharray=\"2 3\"");
      h += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>", x, H - bottom + 16,
                       v >= 1 ? fmt::format("{:.0f}", v) : fmt::format("{}", v));
    }
  }
  for (double t : nice_ticks(ylo, yhi, 6)) {
    double y = top + (yhi - t) / (yhi - ylo) * (H - top - bottom);
    h += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\"/>", left, y, W - right, y);
    h += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>", left - 6, y + 4,
                     fmt::format("{:g}", t));
  }
  h += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#8c959f\"/>", left, H - bottom, W - right);
  h += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#8c959f\"/>", left, top, H - bottom);
  h += fmt::format("<text x=\"{}\" y=\"{}\">texts per second (encoding, log scale)</text>", left, H - 12);
  h += fmt::format("<text transform=\"translate(16 {:.1f}) rotate(-90)\" text-anchor=\"middle\">Mean (Task)</text>",
                   top + (H - top - bottom) / 2);
  h += "</g>\n";

  // The front as a staircase: each front point dominates everything below and to its left.
  std::vector<const ScorePoint*> front;
  for (const auto& p : lb.points)
    if (p.pareto) front.push_back(&p);
  std::string path;
  for (size_t i = 0; i < front.size(); ++i) {
    double x = sx(front[i]->items_per_second), y = sy(front[i]->score);
    path += i == 0 ? fmt::format("M{:.1f} {:.1f}", x, y) : fmt::format(" H{:.1f} V{:.1f}", x, y);
  }
  if (front.size() > 1)
    h += "<path d=\"" + path + "\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>\n";

  // Labels: every point when there are few, else the front only; each takes
  // the first of four spots around its point that overlaps no earlier label
  // and stays inside the plot, or is left to the tooltip.
  const bool label_all = lb.points.size() <= 12;
  struct Box {
    double x0, y0, x1, y1;
  };
  std::vector<Box> placed;
  auto place = [&](double x, double y, double width) -> std::optional<std::pair<Box, bool>> {
    const double dx = 9, up = 7, down = 17, hgt = 13;
    for (int spot = 0; spot < 4; ++spot) {
      bool left_side = spot >= 2, below = spot % 2 == 1;
      double bx0 = left_side ? x - dx - width : x + dx, by1 = below ? y + down : y - up;
      Box b{bx0, by1 - hgt + 2, bx0 + width, by1 + 3};
      if (b.x0 < left + 2 || b.x1 > W - right - 2 || b.y0 < top || b.y1 > H - bottom - 2) continue;
      bool clash = false;
      for (const Box& o : placed) clash |= b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1;
      if (!clash) return std::make_pair(b, left_side);
    }
    return std::nullopt;
  };
  for (const auto& p : lb.points) {
    const LeaderboardRow& row = lb.rows[p.row];
    double x = sx(p.items_per_second), y = sy(p.score);
    std::string label = model_label(row.model.info);
    h += "<g data-model=\"" + html_escape(row.model.info.name) + "\" data-variant=\"" +
         html_escape(variant_label(row.model.info)) + "\">";
    h += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\" stroke=\"{}\" stroke-width=\"1.5\">",
                     x, y, p.pareto ? 6 : 5, p.pareto ? "#0969da" : "#ffffff", p.pareto ? "#ffffff" : "#6e7781");
    h += "<title>" + html_escape(fmt::format("{}: Mean (Task) {}, {} texts/s", label, format_score(p.score),
                                             format_rate(p.items_per_second))) + "</title></circle>";
    if (label_all || p.pareto) {
      // Width from the character count: 12 px sans averages ~6.8 px a character.
      double width = 6.8 * static_cast<double>(label.size()) + (p.pareto ? 6 : 0);
      if (auto spot = place(x, y, width)) {
        placed.push_back(spot->first);
        h += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\"{}>", spot->second ? x - 9 : x + 9,
                         spot->first.y1 - 3, spot->second ? "end" : "start", p.pareto ? " font-weight=\"600\"" : "");
        h += html_escape(label) + "</text>";
      }
    }
    h += "</g>\n";
  }
  h += fmt::format("<g transform=\"translate({} {})\"><circle cx=\"0\" cy=\"0\" r=\"6\" fill=\"#0969da\"/>"
                   "<text x=\"10\" y=\"4\">Pareto front</text><circle cx=\"110\" cy=\"0\" r=\"5\" fill=\"#fff\" "
                   "stroke=\"#6e7781\" stroke-width=\"1.5\"/><text x=\"120\" y=\"4\">dominated</text></g>\n",
                   W - right - 190, H - 16);
  h += "</svg></div></section>\n";
}

void per_type(const Leaderboard& lb, std::string& h) {
  for (const auto& type : lb.types) {
    std::string id = "t-type-" + slug(type.type);
    h += "<section id=\"type-" + slug(type.type) + "\"" + type_attr(type.type) + "><h2>" + html_escape(type.type) +
         " <span class=\"sub\">(" + std::to_string(type.n_tasks) + " task" + (type.n_tasks == 1 ? "" : "s") +
         ")</span></h2>\n";
    h += "<div class=\"scroll\"><table id=\"" + id + "\" class=\"sortable\">";
    // With one task the type's mean is that task's score: no column for it.
    const bool with_mean = type.n_tasks > 1;
    std::vector<Th> cols = {{"Model", "model", false, "asc"}};
    if (with_mean) cols.push_back({"Mean", "mean", true, "desc", "", "mean of this type's tasks"});
    std::vector<const TaskColumn*> tasks;
    for (const auto& t : lb.tasks)
      if (t.type == type.type) {
        tasks.push_back(&t);
        cols.push_back({html_escape(t.key) + "<span class=\"spec\">" + html_escape(t.main_score) + "</span>",
                        "task-" + t.key, true, "desc", "", t.key + ": " + t.main_score});
      }
    h += thead(cols) + "<tbody>\n";
    std::vector<std::vector<std::string>> score_cols;
    std::vector<std::optional<double>> means;
    for (const auto& row : lb.rows) means.push_back(row.type_mean.at(type.type));
    if (with_mean) score_cols.push_back(score_column(means));
    for (const TaskColumn* t : tasks) {
      std::vector<std::optional<double>> xs;
      for (const auto& row : lb.rows) xs.push_back(lb.main_score(row, *t));
      score_cols.push_back(score_column(xs));
    }
    for (size_t i = 0; i < lb.rows.size(); ++i) {
      h += row_open(lb.rows[i]) + model_cell(lb.rows[i]);
      for (const auto& col : score_cols) h += col[i];
      h += "</tr>\n";
    }
    h += "</tbody></table></div></section>\n";
  }
}

std::string metric_text(const nlohmann::ordered_json& v) {
  if (v.is_number_float()) return fmt::format("{:.4f}", v.get<double>());
  if (v.is_number()) return v.dump();
  return "";
}

void task_details(const Leaderboard& lb, std::string& h) {
  h += "<section id=\"details\"><h2>Task details</h2>\n<p class=\"note\">Every metric recorded, as fractions (not "
       "x100), for each task. <button type=\"button\" id=\"f-details\" class=\"noprint\">open / close all</button></p>\n";
  int n = 0;
  for (const auto& t : lb.tasks) {
    std::vector<std::string> metrics;
    std::set<std::string> seen;
    const StoredResult* any = nullptr;
    for (const auto& row : lb.rows) {
      const StoredResult* r = lb.result(row, t);
      if (!r) continue;
      any = any ? any : r;
      for (const auto& [k, v] : r->scores.items())
        if (k != "main_score" && (v.is_number() || v.is_null()) && seen.insert(k).second) metrics.push_back(k);
    }
    if (!any) continue;
    std::string id = "t-task-" + std::to_string(++n);
    h += "<details id=\"task-" + slug(t.key) + "\"" + type_attr(t.type) + "><summary>" + html_escape(t.key) +
         "<span class=\"sub\">" +
         html_escape(fmt::format("{} · split {} · main score {} · {} metrics", t.type, any->task.task.split,
                                 t.main_score, metrics.size())) +
         "</span></summary>\n";
    h += "<div class=\"scroll\"><table id=\"" + id + "\" class=\"sortable\">";
    std::vector<Th> cols = {{"Model", "model", false, "asc"},
                            {"Main x100", "main", true, "desc", "", t.main_score}};
    for (const auto& m : metrics) cols.push_back({html_escape(m), "m-" + m, true});
    cols.push_back({"Eval s", "seconds", true, "asc", "", "wall time of the task"});
    cols.push_back({"texts/s", "texts-per-s", true});
    h += thead(cols) + "<tbody>\n";
    for (const auto& row : lb.rows) {
      const StoredResult* r = lb.result(row, t);
      if (!r) continue;
      h += row_open(row) + model_cell(row);
      auto main = lb.main_score(row, t);
      h += td_num(format_score(main), main ? std::optional<double>(*main * 100) : std::nullopt, " class=\"best\"");
      for (const auto& m : metrics) {
        auto it = r->scores.find(m);
        if (it == r->scores.end() || !it->is_number()) h += "<td></td>";
        else h += td_num(metric_text(*it), it->get<double>());
      }
      h += td_num(fmt::format("{:.2f}", r->evaluation_seconds), r->evaluation_seconds);
      std::optional<double> ips;
      if (r->timing.encode_seconds > 0) ips = static_cast<double>(r->timing.encoded_items) / r->timing.encode_seconds;
      h += td_num(format_rate(ips), ips);
      h += "</tr>\n";
    }
    h += "</tbody></table></div></details>\n";
  }
  h += "</section>\n";
}

// Long unbroken strings (hashes, paths, URLs) may wrap only where a reader
// expects it: every `every` characters, or after a '/'.
std::string breakable(const std::string& text, size_t every) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    out += html_escape(std::string(1, text[i]));
    if ((every && (i + 1) % every == 0 && i + 1 < text.size()) || (!every && text[i] == '/')) out += "<wbr>";
  }
  return out;
}

void metadata(const Leaderboard& lb, std::string& h) {
  h += "<section id=\"runs\"><h2>Runs, datasets and prompts</h2>\n<p class=\"note\">Everything needed to reproduce a "
       "number: the build and machine of each run behind the tables, the exact data (SHA-256 of the task files), "
       "and the prompts used.</p>\n";
  h += "<h3>Runs</h3><div class=\"runs\" id=\"run-list\">\n";
  for (const auto& r : lb.runs) {
    h += "<div class=\"run\"><h4>Run " + std::to_string(r.id) + " · " +
         (r.status == "finished" ? html_escape(r.status) : "<span class=\"neg\">" + html_escape(r.status) + "</span>") +
         "</h4><dl>";
    auto field = [&](const std::string& name, const std::string& value_html) {
      if (!value_html.empty()) h += "<dt>" + name + "</dt><dd>" + value_html + "</dd>";
    };
    if (!r.error.empty()) field("Error", "<span class=\"neg\">" + html_escape(r.error) + "</span>");
    field("Started", html_escape(r.started_at));
    field("Finished", html_escape(r.finished_at));
    field("embeval", html_escape(r.run.harness_version + (r.run.git_revision.empty() ? "" : " (" + r.run.git_revision + ")") +
                                 (r.run.build_type.empty() ? "" : ", " + r.run.build_type)));
    field("Command", "<code>" + html_escape(r.run.command) + "</code>");
    field("Host", html_escape(r.run.host));
    field("OS", html_escape(r.run.os));
    field("CPU", html_escape(r.run.cpu_model) + (r.run.cpu_threads > 0 ? html_escape(fmt::format(" ({} threads)", r.run.cpu_threads)) : ""));
    field("Encoder threads", r.run.threads > 0 ? std::to_string(r.run.threads) : "");
    field("GPU", html_escape(r.run.gpu));
    field("libtorch", html_escape(r.run.libtorch_version));
    field("BLAS", "<span class=\"mono\">" + breakable(r.run.blas, 0) + "</span>");
    h += "</dl></div>\n";
  }
  h += "</div>\n";

  h += "<h3>Datasets</h3><div class=\"scroll\"><table id=\"t-datasets\" class=\"sortable\">";
  h += thead({{"Task", "task", false, "asc"},
              {"Type", "type", false, "asc"},
              {"Split", "split", false, "asc"},
              {"Version", "version", true, "asc"},
              {"Language", "language", false, "asc"},
              {"C-MTEB", "mteb", false, "asc"},
              {"SHA-256 of the files", "checksum", false, "asc"},
              {"Source revision", "revision", false, "asc"},
              {"Source", "source", false, "asc"},
              {"License", "license", false, "asc"},
              {"Path", "path", false, "asc"}});
  h += "<tbody>\n";
  std::set<int64_t> seen;
  for (const auto& t : lb.tasks)
    for (const auto& row : lb.rows) {
      const StoredResult* r = lb.result(row, t);
      if (!r || !seen.insert(r->task.id).second) continue;
      const TaskRecord& d = r->task.task;
      h += "<tr" + type_attr(d.type) + ">" + td_text(d.name) + td_text(d.type) + td_text(d.split) +
           td_num(std::to_string(d.version), d.version) + td_text(d.language) + td_text(mteb_relation(d)) +
           "<td class=\"l hash mono\" data-v=\"" + html_escape(d.dataset_checksum) + "\">" + breakable(d.dataset_checksum, 32) +
           "</td><td class=\"l hash mono\" data-v=\"" + html_escape(d.dataset_revision) + "\">" +
           breakable(d.dataset_revision, 20) + "</td><td class=\"l wrap\">" + breakable(d.source_repo, 0) + "</td>" +
           td_text(d.license) + "<td class=\"l wrap mono\">" + breakable(d.path, 0) + "</td></tr>\n";
    }
  h += "</tbody></table></div>\n";

  // Prompts are per task (task.json); a task whose prompt changed between runs lists each one.
  std::vector<std::tuple<std::string, std::string, std::string, std::string>> prompts;  // task, type, role, text
  std::set<std::string> prompt_seen;
  for (const auto& t : lb.tasks)
    for (const auto& row : lb.rows) {
      const StoredResult* r = lb.result(row, t);
      if (!r || !r->prompts.is_object()) continue;
      for (const auto& [role, text] : r->prompts.items()) {
        std::string s = text.is_string() ? text.get<std::string>() : text.dump();
        if (prompt_seen.insert(t.key + '\n' + role + '\n' + s).second) prompts.emplace_back(t.key, t.type, role, s);
      }
    }
  h += "<h3>Prompts</h3>\n";
  if (prompts.empty()) {
    h += "<p class=\"note\">No task used a prompt: every text was encoded as it is.</p>\n";
  } else {
    h += "<div class=\"scroll\"><table id=\"t-prompts\" class=\"sortable\">";
    h += thead({{"Task", "task", false, "asc"}, {"Role", "role", false, "asc"}, {"Prompt", "prompt", false, "asc"}});
    h += "<tbody>\n";
    for (const auto& [task, type, role, text] : prompts)
      h += "<tr" + type_attr(type) + ">" + td_text(task) + td_text(role) + td_text(text, "l wrap") + "</tr>\n";
    h += "</tbody></table></div>\n";
  }
  h += "</section>\n";
}

std::string head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<meta name=\"generator\" content=\"embeval\">\n<title>" +
         html_escape(title) + "</title>\n<style>" + CSS + "</style>\n</head>\n<body>\n<main>\n";
}

std::string subtitle(const Leaderboard& lb, const HtmlOptions& o) {
  std::vector<std::string> parts;
  if (!lb.rows.empty())
    parts.push_back(fmt::format("{} model{} · {} task{} · {} run{}", lb.rows.size(), lb.rows.size() == 1 ? "" : "s",
                                lb.tasks.size(), lb.tasks.size() == 1 ? "" : "s", lb.runs.size(),
                                lb.runs.size() == 1 ? "" : "s"));
  if (!o.source.empty()) parts.push_back("from " + o.source);
  if (!o.generated_at.empty()) parts.push_back("generated " + o.generated_at);
  if (!o.generator.empty()) parts.push_back("by " + o.generator);
  return html_escape(fmt::format("{}", fmt::join(parts, " · ")));
}

}  // namespace

std::string html_report(const Leaderboard& lb, const HtmlOptions& o) {
  std::string h = head(o.title);
  h += "<header><h1>" + html_escape(o.title) + "</h1><div class=\"sub\">" + subtitle(lb, o) + "</div></header>\n";
  if (lb.rows.empty()) {
    h += "<p class=\"empty\" id=\"no-results\">No results recorded" +
         (o.source.empty() ? std::string() : " in <code>" + html_escape(o.source) + "</code>") +
         " yet. Run <code>embeval run --suite cmteb-mini</code> (or any model and tasks) first, then write this report "
         "again.</p>\n</main>\n</body>\n</html>\n";
    return h;
  }

  h += "<nav class=\"toc\"><a href=\"#summary\">Summary</a><a href=\"#performance\">Performance</a>";
  if (!lb.quant_groups.empty()) h += "<a href=\"#quantization\">Quantization</a>";
  h += "<a href=\"#chart\">Score vs throughput</a>";
  for (const auto& t : lb.types) h += "<a href=\"#type-" + slug(t.type) + "\">" + html_escape(t.type) + "</a>";
  h += "<a href=\"#details\">Task details</a><a href=\"#runs\">Runs &amp; data</a></nav>\n";
  for (const auto& n : lb.notices) h += "<p class=\"notice\">" + html_escape(n) + "</p>\n";

  std::set<std::string> variants;
  for (const auto& row : lb.rows) variants.insert(variant_label(row.model.info));
  h += "<div class=\"filters noprint\" id=\"filters\"><label>Model <input id=\"f-model\" type=\"search\" "
       "placeholder=\"name contains…\" size=\"22\"></label><label>Task type <select id=\"f-type\"><option "
       "value=\"\">all</option>";
  for (const auto& t : lb.types) h += "<option value=\"" + html_escape(t.type) + "\">" + html_escape(t.type) + "</option>";
  h += "</select></label><label>Spec <select id=\"f-spec\"><option value=\"\">all</option>";
  for (const auto& v : variants) h += "<option value=\"" + html_escape(v) + "\">" + html_escape(v) + "</option>";
  h += "</select></label><button type=\"button\" id=\"f-reset\">reset view</button><span id=\"f-count\"></span></div>\n";

  summary(lb, h);
  performance(lb, h);
  quantization(lb, h);
  chart(lb, h);
  per_type(lb, h);
  task_details(lb, h);
  metadata(lb, h);
  h += "<footer>Written by " + html_escape(o.generator.empty() ? "embeval" : o.generator) +
       ". Metrics follow MTEB's evaluators; this page needs no network.</footer>\n</main>\n<script>" + SCRIPT +
       "</script>\n</body>\n</html>\n";
  return h;
}

}  // namespace embeval::reports
