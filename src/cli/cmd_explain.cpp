// `sensecf explain`: counterfactuals for test (or training) rows with one method,
// written as CSV; `sensecf evaluate-cf`: the CF metrics of such a file.
//
// CSV layout (one row per CF; a query without any CF gets one row with found=0
// and empty feature cells, so nothing is silently dropped):
//   row, <group column>, query, cf_index, found, <features...>, target,
//   prediction, probability, valid, seconds, note
// `row` is the factual's row index in the data file (header excluded).
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>

#include "commands.h"
#include "model_data.h"
#include "sensecf/cf/generator.h"
#include "sensecf/cf/metrics.h"
#include "sensecf/clf/nn.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace sensecf::cli {
namespace {

std::string format_feature(const data::Feature& f, double v) {
  if (f.is_categorical()) {
    const auto k = static_cast<std::size_t>(v);
    return k < f.categories.size() ? f.categories[k] : fmt::format("{}", v);
  }
  return fmt::format("{}", v);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void write_cfs_csv(const std::string& path, const ModelAndData& md, const std::vector<std::size_t>& rows,
                   const std::vector<cf::QueryResult>& results) {
  std::ofstream out(path);
  if (!out) throw Error("cannot write '" + path + "'", "does the directory exist?");
  const auto& schema = md.data.schema;
  const std::string group = schema.group.empty() ? "group" : schema.group;
  out << "row," << csv_field(group) << ",query,cf_index,found";
  for (const auto& f : schema.features) out << ',' << csv_field(f.name);
  out << ",target,prediction,probability,valid,seconds,note\n";
  for (const auto& r : results) {
    const std::size_t row = rows[r.query];
    const std::string prefix = fmt::format("{},{},{}", row, csv_field(md.data.group[row]), r.query);
    if (r.cfs.empty()) {
      out << prefix << ",0,0" << std::string(schema.size(), ',') << ',' << r.target << ",,,0," << r.seconds << ','
          << csv_field(r.note) << '\n';
      continue;
    }
    for (std::size_t k = 0; k < r.cfs.size(); ++k) {
      const auto& c = r.cfs[k];
      out << prefix << ',' << k << ",1";
      for (std::size_t j = 0; j < schema.size(); ++j) out << ',' << csv_field(format_feature(schema.features[j], c.x[j]));
      out << ',' << r.target << ',' << (c.p1 > 0.5 ? 1 : 0) << ',' << fmt::format("{}", c.p1) << ','
          << (c.valid ? 1 : 0) << ',' << r.seconds << ',' << csv_field(r.note) << '\n';
    }
  }
  if (!out) throw Error("write to '" + path + "' failed");
}

void print_metrics(const std::map<int, cf::CfMetrics>& by_class, const std::string& method, bool json) {
  if (json) {
    nlohmann::json j = {{"method", method},
                        {"all", by_class.at(-1).to_json()},
                        {"class0", by_class.at(0).to_json()},
                        {"class1", by_class.at(1).to_json()}};
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << fmt::format("{:<8} {:>7} {:>5} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>10} {:>9}\n", "class", "queries",
                           "cfs", "coverage", "validity", "distance", "sparsity", "plaus", "yNN", "violations",
                           "s/query");
  for (const auto& [cls, m] : by_class) {
    std::cout << fmt::format("{:<8} {:>7} {:>5} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>6.3f} {:>8.3f} {:>10.3f} {:>9.4f}\n",
                             cls < 0 ? "all" : "class" + std::to_string(cls), m.n_queries, m.n_cfs, m.coverage,
                             m.validity, m.distance, m.sparsity, m.plausibility, m.ynn, m.violations,
                             m.seconds_per_query);
  }
}

}  // namespace

int cmd_explain(const std::vector<std::string>& args) {
  data::DataOptions data_options;
  cf::CfOptions cf_options;
  LogOptions log;
  std::string model_dir = "results/clf";
  std::string queries = "test";
  std::string out = "cfs.csv";
  int limit = 0;
  bool json = false;
  Options options("explain",
                  "Generate counterfactuals that flip the classifier's prediction for each test (or training) row,\n"
                  "write them as CSV (one row per CF; queries without a CF are listed with found=0) and print the\n"
                  "CF metrics per factual class.");
  data::declare_options(options, data_options);
  cf::declare_options(options, cf_options);
  options.add("explain.clf", &model_dir, "model directory written by `sensecf train-clf`", "clf");
  options.add("explain.queries", &queries, "which rows to explain", "queries").choices({"test", "train"});
  options.add("explain.limit", &limit, "explain at most this many rows (0: all)", "limit");
  options.add("explain.out", &out, "CSV file for the counterfactuals", "out");
  options.add("explain.json", &json, "print the metrics as JSON", "json").not_hashed();
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  const ModelAndData md = load_model_and_data(model_dir, data_options);
  std::vector<std::size_t> rows = queries == "test" ? md.test_rows : md.train_rows;
  if (limit > 0 && rows.size() > static_cast<std::size_t>(limit)) rows.resize(static_cast<std::size_t>(limit));
  const data::Matrix train_x = md.data.x.rows(md.train_rows);
  std::vector<int> train_y;
  for (auto r : md.train_rows) train_y.push_back(md.data.y[r]);
  const data::Matrix query_x = md.data.x.rows(rows);

  // Parallelism is over queries: one LibTorch thread per query thread.
  clf::set_torch_threads(1);
  cf::BlackBox f(*md.model.model);
  cf::Context context{&f, &md.data.schema, &train_x, &train_y};
  auto generator = cf::make_generator(cf_options);
  const auto start = std::chrono::steady_clock::now();
  generator->prepare(context);
  const double prepare_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<int> targets;
  for (double p : f.predict_proba(query_x)) targets.push_back(p > 0.5 ? 0 : 1);  // flip the prediction
  spdlog::info("{}: explaining {} {} rows (prepare {:.2f} s)", generator->name(), rows.size(), queries, prepare_s);
  const auto results = cf::explain_all(*generator, context, query_x, targets, cf_options);
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_cfs_csv(out, md, rows, results);
  std::size_t n_found = 0;
  for (const auto& r : results) n_found += r.cfs.empty() ? 0 : 1;
  spdlog::info("{}: CFs for {} of {} queries in {:.2f} s ({} model calls), written to {}", generator->name(), n_found,
               results.size(), total_s, f.n_calls(), out);
  print_metrics(cf::evaluate_by_class(results, query_x, md.data.schema, f, train_x), cf_options.method, json);
  return 0;
}

int cmd_evaluate_cf(const std::vector<std::string>& args) {
  data::DataOptions data_options;
  LogOptions log;
  std::string model_dir = "results/clf";
  std::string cfs_path = "cfs.csv";
  bool json = false;
  Options options("evaluate-cf",
                  "Compute the CF metrics (validity, distance, sparsity, plausibility, yNN, violations, redundancy,\n"
                  "time) of a CSV written by `sensecf explain`, per factual class. See docs/cf-metrics.md.");
  data::declare_options(options, data_options);
  options.add("evaluate.clf", &model_dir, "model directory written by `sensecf train-clf`", "clf");
  options.add("evaluate.cfs", &cfs_path, "CSV written by `sensecf explain`", "cfs");
  options.add("evaluate.json", &json, "print the metrics as JSON", "json").not_hashed();
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  const ModelAndData md = load_model_and_data(model_dir, data_options);
  const auto& schema = md.data.schema;
  std::ifstream in(cfs_path);
  if (!in) throw Error("cannot open '" + cfs_path + "'", "write it with `sensecf explain --out`");
  std::string line;
  long line_no = 1;
  if (!std::getline(in, line)) throw Error(cfs_path + ": the file is empty");
  const auto header = data::split_csv_line(line, cfs_path, 1);
  std::map<std::string, std::size_t> col;
  for (std::size_t c = 0; c < header.size(); ++c) col[header[c].text] = c;
  for (const std::string name : {"row", "query", "found", "target", "seconds"}) {
    if (!col.count(name)) throw Error(fmt::format("{}:1: no column '{}'; is this a file from `sensecf explain`?", cfs_path, name));
  }
  for (const auto& f : schema.features) {
    if (!col.count(f.name)) throw Error(fmt::format("{}:1: no column for feature '{}'", cfs_path, f.name));
  }
  auto number = [&](const data::CsvCell& cell, const char* what) {
    const auto v = parse_double(cell.text);
    if (!v) {
      throw Error(fmt::format("{}: {} expects a number, found '{}'", SourceLocation{cfs_path, line_no, cell.column}.str(),
                              what, cell.text));
    }
    return *v;
  };
  std::map<std::size_t, std::size_t> query_of_row;  // data row -> index into `rows`
  std::vector<std::size_t> rows;
  std::vector<cf::QueryResult> results;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    const auto cells = data::split_csv_line(line, cfs_path, line_no);
    if (cells.size() != header.size()) {
      throw Error(fmt::format("{}: expected {} fields, found {}", SourceLocation{cfs_path, line_no, 0}.str(),
                              header.size(), cells.size()));
    }
    const auto row = static_cast<std::size_t>(number(cells[col["row"]], "row"));
    if (row >= md.data.size()) {
      throw Error(fmt::format("{}: row {} is outside the data file ({} rows)", SourceLocation{cfs_path, line_no, 0}.str(),
                              row, md.data.size()));
    }
    auto [it, inserted] = query_of_row.try_emplace(row, rows.size());
    if (inserted) {
      rows.push_back(row);
      cf::QueryResult r;
      r.query = it->second;
      r.target = static_cast<int>(number(cells[col["target"]], "target"));
      r.seconds = number(cells[col["seconds"]], "seconds");
      results.push_back(r);
    }
    if (number(cells[col["found"]], "found") == 0) continue;
    cf::Counterfactual c;
    for (std::size_t j = 0; j < schema.size(); ++j) {
      const auto& f = schema.features[j];
      const auto& cell = cells[col[f.name]];
      if (f.is_categorical()) {
        const auto pos = std::find(f.categories.begin(), f.categories.end(), cell.text);
        if (pos == f.categories.end()) {
          throw Error(fmt::format("{}: '{}' is not a category of '{}' ({})", SourceLocation{cfs_path, line_no, cell.column}.str(),
                                  cell.text, f.name, join(f.categories, ", ")));
        }
        c.x.push_back(static_cast<double>(pos - f.categories.begin()));
      } else {
        c.x.push_back(number(cell, f.name.c_str()));
      }
    }
    results[it->second].cfs.push_back(std::move(c));
  }
  const data::Matrix query_x = md.data.x.rows(rows);
  const data::Matrix train_x = md.data.x.rows(md.train_rows);
  cf::BlackBox f(*md.model.model);
  print_metrics(cf::evaluate_by_class(results, query_x, schema, f, train_x), cfs_path, json);
  return 0;
}

}  // namespace sensecf::cli
