// ingest and features: data.source = aireadi, an AI-READI release read by the
// sweep itself (ingest/aireadi.h, docs/aireadi.md).
//
//   ingest    the participants first..last of participants.tsv (in id order),
//             ingest.participants_per_task of them: their windows, problems and
//             counts as shard.json. The tasks run on every worker at once, so
//             the release is read in parallel instead of by rank 0 alone.
//   features  every ingest task's shard -> <workdir>/features.csv (with its
//             .windows.csv and .ingest.json), the table every prepare task
//             reads, like synth's cohort.csv.
//
// The table is cached by the release's fingerprint (ingest::release_fingerprint)
// under ingest.cache: a second sweep over the same files and options copies it
// and its ingest tasks return at once. Within one results file the fingerprint
// is fixed (it is part of the sweep's identity), so the tasks' keys need not
// hold it.
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common.h"
#include "kinds.h"
#include "sensecf/data/source.h"
#include "sensecf/ingest/aireadi.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace fs = std::filesystem;
namespace {

bool reads_aireadi(const SweepConfig& c) {
  return c.sweep.plan == "study" && data::parse_source(c.data.source) == data::Source::kAiReadi;
}

// The ids of participants.tsv in id order, cut into tasks.
std::vector<std::vector<std::string>> shards(const SweepConfig& c) {
  const auto participants = ingest::read_participants(ingest::find_dataset_root(c.ingest.root));
  std::vector<std::vector<std::string>> out;
  const auto per = static_cast<std::size_t>(c.ingest_participants_per_task);
  for (std::size_t i = 0; i < participants.size(); i += per) {
    out.emplace_back();
    for (std::size_t j = i; j < std::min(participants.size(), i + per); ++j) out.back().push_back(participants[j].id);
  }
  if (out.empty()) {
    throw UsageError(fmt::format("data.path = {}: participants.tsv lists no participants", c.ingest.root));
  }
  return out;
}

// ingest.cache, with "auto" -> $XDG_CACHE_HOME/sensecf/aireadi or ~/.cache/sensecf/aireadi; "" when off.
std::string cache_dir(const SweepConfig& c) {
  if (c.ingest_cache == "none" || c.ingest_cache.empty()) return "";
  if (c.ingest_cache != "auto") return c.ingest_cache;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/sensecf/aireadi";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/sensecf/aireadi";
  return "";
}

// The table and its side files, as write_ingest_outputs names them.
const std::vector<std::string>& table_files() {
  static const std::vector<std::string> files = {"features.csv", ingest::windows_path("features.csv"),
                                                 ingest::summary_path("features.csv")};
  return files;
}

// The release's fingerprint: the one the sweep took at its start.
std::string fingerprint_of(const SweepConfig& c) {
  return c.data_fingerprint.empty() ? ingest::release_fingerprint(c.ingest) : c.data_fingerprint;
}

// The cached table of `fingerprint`, or "" when there is none.
std::string cached(const SweepConfig& c, const std::string& fingerprint) {
  const std::string dir = cache_dir(c);
  if (dir.empty()) return "";
  const fs::path entry = fs::path(dir) / fingerprint;
  for (const auto& f : table_files())
    if (!fs::exists(entry / f)) return "";
  return entry.string();
}

class Ingest final : public TaskKind {
 public:
  const char* name() const override { return vocab::kIngest; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    if (!reads_aireadi(config)) return;
    const auto parts = shards(config);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      nlohmann::json p = {{"shard", i}, {"shards", parts.size()}, {"first", parts[i].front()},
                          {"last", parts[i].back()}, {"participants", parts[i].size()}};
      plan.add(name(), p, {}, 0.05 * static_cast<double>(parts[i].size()));  // ~0.03 s per participant-week at bench_ingest's ~170 MB/s
    }
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const SweepConfig& c = *env.config;
    store::TaskOutput out;
    const std::string fingerprint = fingerprint_of(c);
    if (!cached(c, fingerprint).empty()) {
      spdlog::debug("{}: the table of release {} is cached; nothing to read", task.label(), fingerprint);
      return out;
    }
    const auto parts = shards(c);
    const auto i = field<std::size_t>(task, "shard");
    if (parts.size() != field<std::size_t>(task, "shards") || parts[i].front() != field<std::string>(task, "first") ||
        parts[i].back() != field<std::string>(task, "last")) {
      throw PermanentError(task.label() + ": participants.tsv no longer lists the participants this task was planned "
                                          "for",
                           "the release changed under a running sweep; start a new results file");
    }
    ingest::IngestOptions o = c.ingest;
    o.threads = env.threads;
    const auto result = ingest::ingest_aireadi(o, parts[i]);
    const std::string dir = task_dir(env.workdir, task.key);
    fs::create_directories(dir);
    ingest::save_result(result, dir + "/shard.json");
    spdlog::info("{}: {} windows of {} participants, {} problems, {:.1f} MB in {:.1f} s", task.label(),
                 result.features.size(), result.participants.size(), result.problem_count,
                 static_cast<double>(result.bytes) / 1e6, result.seconds);
    out.artifacts["shard"] = dir + "/shard.json";
    return out;
  }
};

class Features final : public TaskKind {
 public:
  const char* name() const override { return vocab::kFeatures; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    if (!reads_aireadi(config)) return;
    std::vector<std::pair<std::string, std::string>> inputs;
    for (const auto& key : plan.keys_of(vocab::kIngest)) inputs.emplace_back("shard", key);
    plan.add(name(), features_params(), std::move(inputs), 1.0);
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const SweepConfig& c = *env.config;
    const std::string fingerprint = fingerprint_of(c);
    const std::string out_csv = env.workdir + "/features.csv";
    store::TaskOutput out;
    out.artifacts["features"] = out_csv;
    if (const std::string hit = cached(c, fingerprint); !hit.empty()) {
      for (const auto& f : table_files()) {
        fs::copy_file(fs::path(hit) / f, env.workdir + "/" + f + ".tmp", fs::copy_options::overwrite_existing);
        fs::rename(env.workdir + "/" + f + ".tmp", env.workdir + "/" + f);
      }
      spdlog::info("{}: the table of release {} from the cache ({})", task.label(), fingerprint, hit);
      describe(env.workdir, fingerprint, true, out);
      return out;
    }
    std::vector<ingest::IngestResult> parts;
    for (const auto& dep : task.deps) parts.push_back(ingest::load_result(task_dir(env.workdir, dep) + "/shard.json"));
    const auto result = ingest::merge_results(std::move(parts));
    std::size_t shown = 0;
    for (const auto& p : result.problems) {
      if (++shown > 20) break;
      spdlog::warn("{}", p.str());
    }
    ingest::write_ingest_outputs(result, c.ingest, out_csv);
    for (const auto& line : ingest::summary_lines(result)) spdlog::info("{}: {}", task.label(), line);
    if (const std::string dir = cache_dir(c); !dir.empty()) store_in_cache(dir, fingerprint, env.workdir);
    describe(env.workdir, fingerprint, false, out);
    return out;
  }

 private:
  // The table's facts for /artifacts/<key> in the results file: where it came
  // from and what the ingest kept, dropped and reported.
  static void describe(const std::string& workdir, const std::string& fingerprint, bool from_cache,
                       store::TaskOutput& out) {
    const std::string path = workdir + "/features.ingest.json";
    std::ifstream in(path);
    const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    out.artifacts["summary"] = path;
    out.artifacts["fingerprint"] = fingerprint;
    out.artifacts["from_cache"] = from_cache;
    if (j.is_discarded()) return;
    for (const char* k : {"rows", "positive", "candidate_windows", "problem_count", "gender_provided"})
      if (j.contains(k)) out.artifacts[k] = j[k];
    if (j.contains("dropped")) out.artifacts["dropped"] = j["dropped"].dump();
    if (j.contains("participants")) out.artifacts["participants"] = j["participants"].size();
  }

  // Copies the table into <cache>/<fingerprint>/ (a temporary folder renamed
  // into place, so a reader never sees half of it). A cache that cannot be
  // written is a warning, not a failed task.
  static void store_in_cache(const std::string& dir, const std::string& fingerprint, const std::string& workdir) {
    std::error_code ec;
    const fs::path entry = fs::path(dir) / fingerprint;
    const fs::path tmp = fs::path(dir) / (fingerprint + ".tmp." + std::to_string(::getpid()));
    fs::create_directories(tmp, ec);
    for (const auto& f : table_files()) {
      if (!ec) fs::copy_file(fs::path(workdir) / f, tmp / f, fs::copy_options::overwrite_existing, ec);
    }
    if (!ec) fs::rename(tmp, entry, ec);
    if (ec) {
      fs::remove_all(tmp, ec);
      if (!fs::exists(entry)) spdlog::warn("ingest.cache {}: cannot store the table ({})", dir, ec.message());
    }
  }
};

}  // namespace

nlohmann::json features_params() { return {{"source", "aireadi"}}; }

const TaskKind& ingest_kind() {
  static const Ingest kind;
  return kind;
}

const TaskKind& features_kind() {
  static const Features kind;
  return kind;
}

}  // namespace sensecf::sweep::kinds
