// `sensecf status --results R.h5`: where a sweep stands, while it runs or after.
//
// The coordinator rewrites R.h5.status.json every 2 s and at its end (counts
// per kind and per method, running tasks with their ranks and time, failed
// tasks with their messages, the ETA): reading it needs no HDF5 lock and no
// MPI, so it works from a login node while the job runs. A file not updated
// for a while, in state running, means the job died (kill -9, a lost node):
// the command says so and how to resume. Without the file (a sweep from before
// it existed), the journal's done and failed attempts are counted instead.
#include <spdlog/fmt/fmt.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/sweep/journal.h"

namespace sensecf::cli {
namespace {

std::string counts_row(const std::string& name, const nlohmann::json& c) {
  return fmt::format("  {:<34} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7}\n", name, c.value("tasks", 0), c.value("done", 0),
                     c.value("running", 0), c.value("failed", 0), c.value("blocked", 0), c.value("pending", 0));
}

void print_status(const nlohmann::json& s, double age, std::ostream& out) {
  const std::string state = s.value("state", "?");
  const auto& t = s["total"];
  out << fmt::format("state: {} (updated {} ago), {}/{} tasks done, {} running, {} failed, {} blocked, {} pending\n",
                     state, format_duration(age), t.value("done", 0), t.value("tasks", 0), t.value("running", 0),
                     t.value("failed", 0), t.value("blocked", 0), t.value("pending", 0));
  if (state == "running") {
    const auto& eta = s["eta_seconds"];
    out << fmt::format("elapsed {}, ETA {}\n", format_duration(s.value("elapsed", 0.0)),
                       eta.is_number() ? format_duration(eta.get<double>()) : std::string("? (no task of this run done yet)"));
  }
  out << "\n" << fmt::format("  {:<34} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7}\n", "kind", "tasks", "done", "run",
                             "failed", "blocked", "pending");
  for (const auto& [kind, c] : s["by_kind"].items()) out << counts_row(kind, c);
  if (!s["by_method"].empty()) {
    out << "\n" << fmt::format("  {:<34} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7}\n", "method", "tasks", "done", "run",
                               "failed", "blocked", "pending");
    for (const auto& [method, c] : s["by_method"].items()) out << counts_row(method, c);
  }
  if (!s["running"].empty()) {
    out << "\nrunning:\n";
    for (const auto& r : s["running"]) {
      std::string ranks;
      for (const auto& k : r["ranks"]) ranks += (ranks.empty() ? "r" : ",r") + std::to_string(k.get<int>());
      out << fmt::format("  {:<8} {} [{}] for {}\n", ranks, r.value("label", ""), r.value("key", ""),
                         format_duration(r.value("seconds", 0.0)));
    }
  }
  if (!s["failed"].empty()) {
    out << "\nfailed:\n";
    const std::string workdir = s.value("workdir", "");
    for (const auto& f : s["failed"]) {
      out << fmt::format("  {} [{}] after {} attempt(s): {}\n", f.value("label", ""), f.value("key", ""),
                         f.value("attempts", 0), f.value("message", ""));
      if (!workdir.empty()) out << fmt::format("    log: {}/tasks/{}/log.txt\n", workdir, f.value("key", ""));
    }
  }
}

}  // namespace

int cmd_status(const std::vector<std::string>& args) {
  std::string results;
  bool json = false;
  double stale = 120;
  LogOptions log;
  Options options("status",
                  "Where a sweep stands, while it runs or after: tasks done, running (on which rank, for how\n"
                  "long), failed (with the message) and pending, per kind and per CF method, and the ETA. Reads\n"
                  "R.h5.status.json, which the coordinator rewrites every 2 s (no HDF5 lock, no MPI needed).");
  options.add("status.results", &results, "the sweep's results file (R.h5)", "results");
  options.add("status.json", &json, "print the status as JSON", "json").not_hashed();
  options.add("status.stale", &stale, "seconds without an update after which a running sweep counts as stopped")
      .not_hashed();
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;
  if (results.empty()) throw UsageError("status: no results file", "pass --results R.h5 (the sweep's --results)");

  const std::string status_path = results + ".status.json", journal_path = results + ".journal";
  if (std::filesystem::exists(status_path)) {
    std::ifstream in(status_path);
    nlohmann::json s;
    try {
      s = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error("'" + status_path + "' is not valid JSON: " + e.what(),
                  "the coordinator rewrites it every 2 s; run status again");
    }
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const double age = now - s.value("updated", now);
    s["age_seconds"] = age;
    const bool stopped = s.value("state", "") == "running" && age > stale;
    s["stopped"] = stopped;
    if (json) {
      std::cout << s.dump(1) << "\n";
    } else {
      print_status(s, age, std::cout);
      if (stopped)
        std::cout << fmt::format(
            "\nno update for {}: the sweep is not running any more (killed, or its node lost); the tasks shown as "
            "running will run again when you rerun the same sweep command, which resumes\n",
            format_duration(age));
    }
    return 0;
  }
  if (!std::filesystem::exists(journal_path))
    throw Error("no sweep at '" + results + "': neither " + status_path + " nor " + journal_path + " exists",
                "pass the --results path the sweep was started with");
  // A sweep from before status files: what its journal recorded.
  sweep::JournalHeader header;
  std::vector<sweep::JournalEntry> entries;
  sweep::Journal::read(journal_path, &header, &entries);
  std::map<std::string, std::map<std::string, std::string>> last;  // kind -> key -> status
  for (const auto& e : entries) last[e.record.kind][e.record.key] = e.record.status;
  nlohmann::json by_kind = nlohmann::json::object();
  for (const auto& [kind, keys] : last) {
    int done = 0, failed = 0;
    for (const auto& [key, status] : keys) (status == "done" ? done : failed)++;
    by_kind[kind] = {{"done", done}, {"failed", failed}};
  }
  if (json) {
    std::cout << nlohmann::json{{"state", "unknown"}, {"source", "journal"}, {"by_kind", by_kind}}.dump(1) << "\n";
    return 0;
  }
  std::cout << "no status file (a sweep from before `sensecf status`); from the journal " << journal_path << ":\n";
  for (const auto& [kind, c] : by_kind.items())
    std::cout << fmt::format("  {:<12} {} done, {} failed\n", kind, c["done"].get<int>(), c["failed"].get<int>());
  return 0;
}

}  // namespace sensecf::cli
