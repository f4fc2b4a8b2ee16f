#include "harness/task_type.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <unordered_map>


#include <fmt/format.h>
#include <fmt/ranges.h>

#include "datasets/text_util.h"
#include "harness/embedding_cache.h"
#include "harness/error.h"
#include "harness/interrupt.h"

namespace embeval {
namespace {

struct Entry {
  std::unique_ptr<TaskType> type;
  std::string file;
};

std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> r;
  return r;
}

}  // namespace

bool register_task_type(std::unique_ptr<TaskType> type, const char* file) {
  std::string name = type->name();
  auto& r = registry();
  auto it = r.find(name);
  if (it != r.end()) {
    std::fprintf(stderr, "embeval: task type \"%s\" registered twice: %s and %s\n", name.c_str(),
                 it->second.file.c_str(), file);
    std::abort();
  }
  r.emplace(name, Entry{std::move(type), file});
  return true;
}

const TaskType& find_task_type(const std::string& name) {
  auto& r = registry();
  auto it = r.find(name);
  if (it == r.end()) fail("unknown task type \"{}\"; known types: {}", name, fmt::join(task_type_names(), ", "));
  return *it->second.type;
}

std::vector<std::string> task_type_names() {
  std::vector<std::string> names;
  for (const auto& [name, entry] : registry()) names.push_back(name);
  return names;
}

EvalContext::EvalContext(Encoder& encoder, const data::TaskSpec& task) : encoder_(encoder), task_(task) {}

const std::string& EvalContext::prompt_for(Role role) const {
  return role == ROLE_QUERY ? task_.query_prompt : task_.passage_prompt;
}

EncodeOptions EvalContext::options_for(Role role) const {
  EncodeOptions o;
  o.role = role;
  o.prompt = prompt_for(role);
  o.task_name = task_.mteb_name.empty() ? task_.name : task_.mteb_name;  // models' prompts use C-MTEB's names
  o.task_type = task_.type;
  return o;
}

Matrix EvalContext::encode(const std::vector<std::string>& texts, Role role, const char* what) {
  // Encode each distinct text once: vectors do not depend on batch-mates.
  std::unordered_map<std::string_view, int64_t> first;
  std::vector<std::string> unique;
  std::vector<int64_t> slot(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto [it, inserted] = first.emplace(texts[i], static_cast<int64_t>(unique.size()));
    if (inserted) unique.push_back(texts[i]);
    slot[i] = it->second;
  }
  check_interrupt();
  seen_[role].insert(seen_[role].end(), unique.begin(), unique.end());
  encoded_[role] = true;
  EncodeOptions options = options_for(role);
  if (progress_) {
    progress_->start(progress_label_ + " " + what);
    options.progress = [this](int64_t done, int64_t total) { progress_->update(done, total); };
  }

  const int64_t dim = encoder_.dim();
  // With a cache, only the texts it lacks are encoded (and then added to it).
  Matrix enc(static_cast<int64_t>(unique.size()), dim);
  std::vector<bool> cached(unique.size(), false);
  std::string prompt_used;
  if (cache_) {
    prompt_used = encoder_.prompt_used(options);
    cached = cache_->lookup(encoder_.info().fingerprint, role_name(role), prompt_used, dim, unique, enc);
  }
  std::vector<std::string> missing;
  std::vector<size_t> missing_at;
  for (size_t i = 0; i < unique.size(); ++i)
    if (!cached[i]) {
      missing.push_back(unique[i]);
      missing_at.push_back(i);
    }
  if (!missing.empty()) {
    auto t0 = std::chrono::steady_clock::now();
    Matrix fresh = encoder_.encode(missing, options);
    if (progress_) progress_->clear();
    stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats_.calls += 1;
    stats_.items += static_cast<int64_t>(missing.size());
    int64_t tokens = encoder_.last_token_count();
    if (tokens >= 0) stats_.tokens = std::max<int64_t>(stats_.tokens, 0) + tokens;

    if (fresh.rows != static_cast<int64_t>(missing.size()) || fresh.cols != dim ||
        fresh.values.size() != static_cast<size_t>(fresh.rows * fresh.cols))
      fail("{}: encoder {} returned a {}x{} matrix for {} {} texts; expected {}x{}", task_.name, encoder_.spec(),
           fresh.rows, fresh.cols, missing.size(), what, missing.size(), dim);
    for (int64_t r = 0; r < fresh.rows; ++r) {
      const float* v = fresh.row(r);
      for (int64_t c = 0; c < dim; ++c)
        if (!std::isfinite(v[c]))
          fail("{}: encoder {} returned a non-finite value ({}) at dimension {} for {} text \"{}\"", task_.name,
               encoder_.spec(), v[c], c, what, data::utf8_preview(missing[static_cast<size_t>(r)]));
    }
    if (cache_) cache_->store(encoder_.info().fingerprint, role_name(role), prompt_used, missing, fresh);
    if (missing.size() == unique.size()) enc = std::move(fresh);
    else
      for (size_t j = 0; j < missing.size(); ++j)
        std::copy(fresh.row(static_cast<int64_t>(j)), fresh.row(static_cast<int64_t>(j)) + dim,
                  enc.row(static_cast<int64_t>(missing_at[j])));
  }
  if (keep_sets_) sets_.push_back({role, encoded_set_digest(options.prompt, unique), enc});
  if (unique.size() == texts.size()) return enc;
  Matrix out(static_cast<int64_t>(texts.size()), dim);
  for (size_t i = 0; i < texts.size(); ++i)
    std::copy(enc.row(slot[i]), enc.row(slot[i]) + dim, out.row(static_cast<int64_t>(i)));
  return out;
}

std::vector<std::string> EvalContext::latency_sample(size_t n, Role* role) const {
  *role = !seen_[ROLE_QUERY].empty() ? ROLE_QUERY : !seen_[ROLE_PASSAGE].empty() ? ROLE_PASSAGE : ROLE_NONE;
  const auto& pool = seen_[*role];
  std::vector<std::string> out;
  if (pool.empty() || n == 0) return out;
  const size_t take = std::min(n, pool.size());
  for (size_t i = 0; i < take; ++i) out.push_back(pool[i * pool.size() / take]);
  return out;
}

}  // namespace embeval
