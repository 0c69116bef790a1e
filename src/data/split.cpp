// Patient-level stratified split and label-scarcity scenarios.
#include "sensecf/data/split.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <map>

#include "sensecf/core/error.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/core/random.h"

namespace sensecf::data {

Split assigned_split(const Dataset& data, const std::map<std::string, std::string>& split_of) {
  Split s;
  for (std::size_t r = 0; r < data.size(); ++r) {
    const auto it = split_of.find(data.group[r]);
    if (it == split_of.end()) {
      throw Error(fmt::format("{}: patient '{}' has no recommended split", data.source, data.group[r]),
                  "ingest the release again (its .windows.csv lists every patient's split), or use data.split = random");
    }
    (it->second == "test" ? s.test : s.train).push_back(r);
  }
  if (s.test.empty() || s.train.empty()) {
    throw Error(fmt::format("{}: the recommended split leaves {} training and {} test rows", data.source,
                            s.train.size(), s.test.size()),
                "use data.split = random");
  }
  return s;
}

Split patient_split(const Dataset& data, double test_fraction, std::uint64_t seed) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
    throw Error(fmt::format("test fraction must be in (0, 1), got {}", test_fraction));
  }
  // Groups in order of first appearance, with their rows and majority label.
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::size_t>> rows_of;
  for (std::size_t r = 0; r < data.size(); ++r) {
    auto [it, inserted] = rows_of.try_emplace(data.group[r]);
    if (inserted) order.push_back(data.group[r]);
    it->second.push_back(r);
  }
  if (order.size() < 2) {
    throw Error(fmt::format("{}: only {} patient group(s); a patient-level split needs at least 2", data.source,
                            order.size()),
                "check --group, or pass --group '' to split by row");
  }
  // Stratify patients by majority label (ties count as positive).
  std::vector<std::string> strata[2];
  for (const auto& g : order) {
    std::size_t pos = 0;
    for (auto r : rows_of[g]) pos += static_cast<std::size_t>(data.y[r]);
    strata[2 * pos >= rows_of[g].size() ? 1 : 0].push_back(g);
  }
  Rng rng(derive_seed(seed, "patient_split"));
  std::vector<std::string> test_groups, train_groups;
  for (auto& s : strata) {
    rng.shuffle(s);
    const auto n_test = static_cast<std::size_t>(std::llround(test_fraction * static_cast<double>(s.size())));
    test_groups.insert(test_groups.end(), s.begin(), s.begin() + static_cast<long>(n_test));
    train_groups.insert(train_groups.end(), s.begin() + static_cast<long>(n_test), s.end());
  }
  // Both sides must be non-empty even for tiny inputs.
  if (test_groups.empty()) {
    test_groups.push_back(train_groups.back());
    train_groups.pop_back();
  } else if (train_groups.empty()) {
    train_groups.push_back(test_groups.back());
    test_groups.pop_back();
  }
  Split split;
  for (const auto& g : train_groups) split.train.insert(split.train.end(), rows_of[g].begin(), rows_of[g].end());
  for (const auto& g : test_groups) split.test.insert(split.test.end(), rows_of[g].begin(), rows_of[g].end());
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.test.begin(), split.test.end());
  spdlog::debug("patient split: {} train patients ({} rows), {} test patients ({} rows)", train_groups.size(),
                split.train.size(), test_groups.size(), split.test.size());
  return split;
}

Scarcity parse_scarcity(const std::string& name) {
  if (name == vocab::kFull) return Scarcity::kFull;
  if (name == vocab::kPositive) return Scarcity::kPositive;
  if (name == vocab::kNegative) return Scarcity::kNegative;
  if (name == vocab::kDual) return Scarcity::kDual;
  throw UsageError("unknown scarcity scenario '" + name + "'",
                   "use full, positive (class 1 reduced), negative (class 0 reduced) or dual (both)");
}

std::string to_string(Scarcity s) {
  switch (s) {
    case Scarcity::kFull: return vocab::kFull;
    case Scarcity::kPositive: return vocab::kPositive;
    case Scarcity::kNegative: return vocab::kNegative;
    case Scarcity::kDual: return vocab::kDual;
  }
  return "?";
}

std::size_t Scenario::removed_of(int label, const Dataset& data) const { return data.count_label(label, removed); }

Scenario make_scenario(const Dataset& data, const std::vector<std::size_t>& train_rows, Scarcity kind,
                       double fraction, std::uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    throw Error(fmt::format("scarcity fraction must be in [0, 1), got {}", fraction));
  }
  Scenario sc;
  sc.kind = kind;
  sc.fraction = kind == Scarcity::kFull ? 0.0 : fraction;
  const bool reduce[2] = {kind == Scarcity::kNegative || kind == Scarcity::kDual,
                          kind == Scarcity::kPositive || kind == Scarcity::kDual};
  std::vector<char> drop(data.size(), 0);
  for (int label = 0; label < 2; ++label) {
    if (!reduce[label]) continue;
    std::vector<std::size_t> rows;
    for (auto r : train_rows)
      if (data.y[r] == label) rows.push_back(r);
    Rng rng(derive_seed(seed, "scenario/" + to_string(kind) + "/" + std::to_string(label)));
    rng.shuffle(rows);
    const auto n_remove = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(rows.size())));
    for (std::size_t i = 0; i < n_remove; ++i) drop[rows[i]] = 1;
  }
  for (auto r : train_rows) (drop[r] ? sc.removed : sc.kept).push_back(r);
  std::sort(sc.kept.begin(), sc.kept.end());
  std::sort(sc.removed.begin(), sc.removed.end());
  return sc;
}

std::vector<std::size_t> reduce_patients(const Dataset& d, const std::vector<std::size_t>& rows,
                                     double reduction, std::uint64_t seed) {
  std::map<std::string, std::vector<std::size_t>> rows_of;
  std::vector<std::string> order;
  for (auto r : rows) {
    auto [it, inserted] = rows_of.try_emplace(d.group[r]);
    if (inserted) order.push_back(d.group[r]);
    it->second.push_back(r);
  }
  std::vector<std::string> strata[2];
  for (const auto& g : order) {
    std::size_t pos = 0;
    for (auto r : rows_of[g]) pos += static_cast<std::size_t>(d.y[r]);
    strata[2 * pos >= rows_of[g].size() ? 1 : 0].push_back(g);
  }
  std::vector<std::size_t> out;
  for (int label = 0; label < 2; ++label) {
    auto& groups = strata[label];
    Rng rng(derive_seed(seed, "reduce/" + std::to_string(label)));
    rng.shuffle(groups);
    const auto keep = static_cast<std::size_t>(std::llround((1.0 - reduction) * static_cast<double>(groups.size())));
    for (std::size_t i = 0; i < keep; ++i) out.insert(out.end(), rows_of[groups[i]].begin(), rows_of[groups[i]].end());
  }
  std::sort(out.begin(), out.end());
  return out;
}


}  // namespace sensecf::data
