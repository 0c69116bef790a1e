// `sensecf score`: ACC/PRE/REC/F1/AUC of a predictions CSV.
//
// The CSV has a header naming (at least) the columns `y_true` (0 or 1) and
// `score` (P(y = 1)), in any order; other columns are ignored. The metrics are
// printed to stdout as Metrics::line(), or with --json as one JSON object (an
// undefined AUC, one class only, is null). This is the command the scikit-learn
// golden test drives (tests/python/test_metrics_sklearn.py).
//
// Lines are split with data::split_csv_line (quoted fields, no newlines inside
// quotes); this file does not build a Dataset.
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>

#include "commands.h"
#include "sensecf/data/csv.h"
#include "sensecf/clf/metrics.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace sensecf::cli {
namespace {

struct ScoreOptions {
  std::string predictions;
  bool json = false;
};

std::size_t find_column(const std::vector<data::CsvCell>& header, const std::string& name, const std::string& path) {
  std::vector<std::string> names;
  for (std::size_t c = 0; c < header.size(); ++c) {
    const std::string h(trim(header[c].text));
    if (h == name) return c;
    names.push_back(h);
  }
  const std::string best = closest_match(name, names);
  throw Error(fmt::format("{}: the header has no column '{}' (columns: {})", SourceLocation{path, 1, 0}.str(),
                          name, join(names, ", ")),
              best.empty() ? "a predictions file needs the columns y_true and score"
                           : fmt::format("rename column '{}' to '{}'?", best, name));
}

struct Predictions {
  std::vector<int> y_true;
  std::vector<double> scores;
};

Predictions read_predictions(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("cannot open predictions file {}", path), "check the path and permissions");

  std::string line;
  long line_no = 0;
  // The header is the first non-blank line.
  std::vector<data::CsvCell> header;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
    if (!trim(line).empty()) {
      header = data::split_csv_line(line, path, line_no);
      break;
    }
  }
  if (header.empty()) {
    throw Error(fmt::format("{}: empty file; expected a header with columns y_true and score",
                            SourceLocation{path, 1, 0}.str()));
  }
  const long header_line = line_no;
  const std::size_t col_y = find_column(header, "y_true", path);
  const std::size_t col_score = find_column(header, "score", path);
  const std::size_t needed = std::max(col_y, col_score) + 1;

  Predictions p;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    const std::vector<data::CsvCell> fields = data::split_csv_line(line, path, line_no);
    if (fields.size() < needed) {
      throw Error(fmt::format("{}: {} field(s) but the header (line {}) has {}",
                              SourceLocation{path, line_no, 0}.str(), fields.size(), header_line, header.size()),
                  "every row needs a y_true and a score");
    }
    const data::CsvCell& fy = fields[col_y];
    const data::CsvCell& fs = fields[col_score];
    const auto y = parse_double(fy.text);
    if (!y || (*y != 0.0 && *y != 1.0)) {
      throw Error(fmt::format("{}: y_true is '{}', expected 0 or 1", SourceLocation{path, line_no, fy.column}.str(),
                              fy.text));
    }
    const auto s = parse_double(fs.text);
    if (!s || !std::isfinite(*s)) {
      throw Error(fmt::format("{}: score is '{}', expected a finite number",
                              SourceLocation{path, line_no, fs.column}.str(), fs.text),
                  "scores are P(y = 1), e.g. 0.73");
    }
    p.y_true.push_back(static_cast<int>(*y));
    p.scores.push_back(*s);
  }
  if (p.y_true.empty()) {
    throw Error(fmt::format("{}: the file has a header but no prediction rows",
                            SourceLocation{path, header_line, 0}.str()));
  }
  return p;
}

}  // namespace

int cmd_score(const std::vector<std::string>& args) {
  LogOptions log;
  ScoreOptions score;
  Options options("score",
                  "Compute accuracy, precision, recall, F1 (threshold 0.5, positive label 1) and ROC AUC of a "
                  "predictions CSV with columns y_true and score, with scikit-learn's definitions.");
  declare_common_options(options, log);
  options.add("score.predictions", &score.predictions, "CSV with a header and columns y_true (0/1) and score",
              "predictions");
  options.add("score.json", &score.json, "print the metrics as one JSON object instead of one line", "json")
      .not_hashed();
  options.add_check([&score] {
    if (score.predictions.empty()) {
      throw UsageError("no predictions file given", "pass --predictions FILE.csv");
    }
  });
  if (!parse_and_start(options, log, args)) return 0;

  const Predictions p = read_predictions(score.predictions);
  const clf::Metrics m = clf::evaluate(p.y_true, p.scores);
  spdlog::debug("scored {} predictions from {}", m.n, score.predictions);
  if (score.json) {
    std::cout << m.to_json().dump() << std::endl;
  } else {
    std::cout << m.line() << std::endl;
  }
  return 0;
}

}  // namespace sensecf::cli
