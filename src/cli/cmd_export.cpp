// `sensecf export`: one table of a results file as CSV or JSON, strings
// decoded, one column per field, so that a results file is one line away from
// a spreadsheet, pandas or jq:
//
//   sensecf export --results R.h5 --table metrics/cf --format csv --out cf.csv
//   sensecf export --results R.h5 --table counterfactuals --format json
//
// Tables: the compound tables (tasks, metrics/cf, metrics/clf, metrics/train,
// metrics/usage; docs/results-format.md) as they are, and `counterfactuals`:
// every generate task's CFs in long form, one row per query (key, method,
// scenario, purpose, seed, query_row, patient, target, found, valid,
// probability, then factual_<feature> and cf_<feature> per feature, categorical
// ones as their category names, then the LLM's answer).
// CSV: RFC 4180 (fields with a comma, quote or line break quoted); NaN as an
// empty field. JSON: an array of objects, NaN as null.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/store/h5file.h"

namespace sensecf::cli {
namespace {

const std::vector<std::string> kTables = {"tasks",         "metrics/cf",    "metrics/clf",
                                          "metrics/train", "metrics/usage", "counterfactuals"};

struct Sheet {
  std::vector<std::string> columns;
  std::vector<store::Row> rows;
};

Sheet compound_table(store::H5File& file, const std::string& name) {
  const std::string path = "/" + name;
  if (!file.exists(path))
    throw Error("'" + file.path() + "' has no table /" + name,
                name == "metrics/usage" ? "the file predates remote LLMs, or its sweep ran none" : "");
  const auto table = store::Table::open(file, path);
  Sheet s;
  for (const auto& c : table.columns()) s.columns.push_back(c.name);
  s.rows = table.read();
  return s;
}

Sheet counterfactuals(store::H5File& file) {
  Sheet s;
  const std::string root = "/counterfactuals";
  if (!file.exists(root)) throw Error("'" + file.path() + "' has no /counterfactuals group");
  std::vector<std::string> features;
  for (const auto& key : file.list(root)) {
    const std::string base = root + "/" + key;
    const auto names = nlohmann::json::parse(file.attribute(base, "features")).get<std::vector<std::string>>();
    if (s.columns.empty()) {
      features = names;
      s.columns = {"key", "method", "scenario", "purpose", "seed", "query_row", "patient", "target", "found", "valid",
                   "probability"};
      for (const auto& f : features) s.columns.push_back("factual_" + f);
      for (const auto& f : features) s.columns.push_back("cf_" + f);
      s.columns.push_back("answer");
    } else if (names != features) {
      throw Error(fmt::format("'{}': {} has other features than the sets before it", file.path(), base),
                  "export one generate task's set at a time");
    }
    const auto query_row = file.read_ints(base + "/query_row");
    const auto target = file.read_ints(base + "/target");
    const auto found = file.read_ints(base + "/found");
    const auto valid = file.read_ints(base + "/valid");
    const auto probability = file.read_doubles(base + "/probability");
    const auto factual = file.read_doubles(base + "/factual");
    const auto cf = file.read_doubles(base + "/counterfactual");
    const auto answer = file.exists(base + "/answer") ? file.read_strings(base + "/answer")
                                                      : std::vector<std::string>(query_row.size());
    const std::size_t n = query_row.size(), d = features.size();
    if (target.size() != n || found.size() != n || valid.size() != n || probability.size() != n ||
        factual.size() != n * d || cf.size() != n * d || answer.size() != n)
      throw Error(fmt::format("'{}': the arrays of {} disagree in size", file.path(), base),
                  "the file is damaged; rerun that generate task");
    const std::string method = file.attribute(base, "method"), scenario = file.attribute(base, "scenario"),
                      purpose = file.attribute(base, "purpose");
    const long long seed = std::stoll(file.attribute(base, "seed"));
    // Patient ids and category names: in files written since they were stored.
    const auto patient = file.exists(base + "/patient") ? file.read_strings(base + "/patient")
                                                        : std::vector<std::string>(n);
    if (patient.size() != n) {
      throw Error(fmt::format("'{}': {}/patient has {} entries for {} queries", file.path(), base, patient.size(), n),
                  "the file is damaged; rerun that generate task");
    }
    std::vector<std::vector<std::string>> categories(d);  // empty: a number
    if (file.has_attribute(base, "schema")) {
      const auto schema = nlohmann::json::parse(file.attribute(base, "schema"));
      for (const auto& f : schema.at("features")) {
        const auto j = std::find(features.begin(), features.end(), f.at("name").get<std::string>()) - features.begin();
        if (static_cast<std::size_t>(j) < d && f.value("kind", "") == "categorical")
          categories[static_cast<std::size_t>(j)] = f.at("categories").get<std::vector<std::string>>();
      }
    }
    auto value = [&](std::size_t j, double v) -> store::Value {
      const auto& cats = categories[j];
      if (cats.empty() || std::isnan(v) || v < 0 || v >= static_cast<double>(cats.size())) return v;
      return cats[static_cast<std::size_t>(v)];
    };
    for (std::size_t i = 0; i < n; ++i) {
      store::Row r{key, method, scenario, purpose, seed, query_row[i], patient[i], target[i], found[i], valid[i],
                   probability[i]};
      for (std::size_t j = 0; j < d; ++j) r.push_back(value(j, factual[i * d + j]));
      for (std::size_t j = 0; j < d; ++j) r.push_back(value(j, cf[i * d + j]));
      r.emplace_back(answer[i]);
      s.rows.push_back(std::move(r));
    }
  }
  return s;
}

std::string number(double v) { return std::isnan(v) ? "" : fmt::format("{}", v); }

void write_csv(std::ostream& out, const Sheet& s) {
  for (std::size_t c = 0; c < s.columns.size(); ++c) out << (c ? "," : "") << csv_field(s.columns[c]);
  out << "\n";
  for (const auto& row : s.rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c) out << ",";
      if (const auto* i = std::get_if<long long>(&row[c])) {
        out << *i;
      } else if (const auto* d = std::get_if<double>(&row[c])) {
        out << number(*d);
      } else {
        out << csv_field(std::get<std::string>(row[c]));
      }
    }
    out << "\n";
  }
}

void write_json(std::ostream& out, const Sheet& s) {
  // One record per line, keys in column order.
  out << "[";
  for (std::size_t i = 0; i < s.rows.size(); ++i) {
    nlohmann::ordered_json r = nlohmann::ordered_json::object();
    for (std::size_t c = 0; c < s.columns.size(); ++c) {
      const auto& v = s.rows[i][c];
      if (const auto* n = std::get_if<long long>(&v)) {
        r[s.columns[c]] = *n;
      } else if (const auto* d = std::get_if<double>(&v)) {
        r[s.columns[c]] = std::isfinite(*d) ? nlohmann::ordered_json(*d) : nlohmann::ordered_json(nullptr);
      } else {
        r[s.columns[c]] = std::get<std::string>(v);
      }
    }
    out << (i ? ",\n " : "\n ") << r.dump();
  }
  out << (s.rows.empty() ? "]\n" : "\n]\n");
}

}  // namespace

int cmd_export(const std::vector<std::string>& args) {
  std::string results, table = "metrics/cf", format = "csv", out_path;
  LogOptions log;
  Options options("export",
                  "Write one table of a results file (from `sensecf sweep`) as CSV or JSON: strings decoded, one\n"
                  "column per field, NaN as an empty field (CSV) or null (JSON). `counterfactuals` flattens every\n"
                  "generate task's CFs, one row per query. See docs/results-format.md for the columns.");
  options.add("export.results", &results, "the results file (HDF5)", "results");
  options.add("export.table", &table, "which table", "table").choices(kTables);
  options.add("export.format", &format, "output format", "format").choices({"csv", "json"});
  options.add("export.out", &out_path, "output file (default: standard output)", "out");
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;
  if (results.empty()) throw UsageError("export: no results file", "pass --results R.h5 (written by `sensecf sweep`)");

  store::H5File file = store::H5File::open(results, /*writable=*/false);
  const Sheet sheet = table == "counterfactuals" ? counterfactuals(file) : compound_table(file, table);
  std::ofstream file_out;
  if (!out_path.empty()) {
    file_out.open(out_path, std::ios::trunc);
    if (!file_out) throw Error("export: cannot write '" + out_path + "'");
  }
  std::ostream& out = out_path.empty() ? std::cout : file_out;
  if (format == "csv") {
    write_csv(out, sheet);
  } else {
    write_json(out, sheet);
  }
  out.flush();
  if (!out) throw Error("export: writing " + (out_path.empty() ? std::string("standard output") : out_path) + " failed");
  if (!out_path.empty())
    spdlog::info("export: {} rows of {} from {} written to {}", sheet.rows.size(), table, results, out_path);
  return 0;
}

}  // namespace sensecf::cli
