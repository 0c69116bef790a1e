// CSV reader and writer for Datasets, and the shared [data] options.
//
// The reader is strict: every problem is an error that names file, line and
// column (1-based) and says how to fix it. It does not guess types: a column is
// categorical only when --categorical says so; every other feature must be
// numeric.
#include "sensecf/data/csv.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/data/source.h"
#include "sensecf/core/strings.h"

namespace sensecf::data {

void declare_options(Options& options, DataOptions& data) {
  options.add("data.source", &data.source,
              "where the rows come from: csv (data.path), synth (the synthetic cohort of [synth]; sweeps only), "
              "aireadi (an AI-READI release, data.path = its folder; sweeps only: see `sensecf ingest`)")
      .choices(source_names());
  options.add("data.path", &data.path, "CSV file with one row per sample (data.source = csv), or the AI-READI release's folder (aireadi)", "data");
  options.add("data.label", &data.label, "binary (0/1) label column", "label");
  options.add("data.group", &data.group,
              "patient/participant id column; rows of one patient never straddle the split "
              "(empty: every row is its own group)",
              "group");
  options.add("data.categorical", &data.categorical, "categorical feature columns (comma-separated)",
              "categorical");
  options.add("data.immutable", &data.immutable,
              "features a counterfactual must not change (comma-separated)", "immutable");
  options.add("data.units", &data.units, "feature units for prompts and reports, name=unit (comma-separated)");
  options.add("data.drop", &data.drop, "columns to ignore (comma-separated)", "drop");
  options.add("data.missing", &data.missing, "what to do with empty or NaN cells", "missing")
      .choices({"error", "drop"});
  options.add("data.test_fraction", &data.test_fraction, "share of patients held out for testing",
              "test-fraction");
  options.add_check([&data, &options] {
    auto at_default = [&options](const char* key) {
      for (const auto& e : options.entries())
        if (e.key == key) return e.source == OptionSource::kDefault;
      return false;
    };
    data.infer_categorical = at_default("data.categorical");
    data.infer_immutable = at_default("data.immutable");
    data.infer_group = at_default("data.group");
    for (const auto& u : data.units) {
      if (u.find('=') == std::string::npos || u.front() == '=')
        throw UsageError("data.units: '" + u + "' is not name=unit", "e.g. units = glucose_mean=mg/dL, age=years");
    }
    if (!(data.test_fraction > 0.0 && data.test_fraction < 1.0)) {
      throw UsageError(fmt::format("data.test_fraction must be in (0, 1), got {}", data.test_fraction));
    }
  });
}

std::vector<CsvCell> split_csv_line(const std::string& line, const std::string& path, long line_no) {
  std::vector<CsvCell> cells;
  CsvCell cur;
  cur.column = 1;
  bool quoted = false;
  bool was_quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur.text += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur.text += c;
      }
    } else if (c == '"' && trim(cur.text).empty() && !was_quoted) {
      quoted = was_quoted = true;
      cur.text.clear();
    } else if (c == ',') {
      if (!was_quoted) cur.text = std::string(trim(cur.text));
      cells.push_back(std::move(cur));
      cur = CsvCell{};
      cur.column = static_cast<long>(i) + 2;
      was_quoted = false;
    } else if (c == '\r' && i + 1 == line.size()) {
      // CRLF line ending
    } else {
      cur.text += c;
    }
  }
  if (quoted) {
    throw Error(fmt::format("{}: unterminated quoted field", SourceLocation{path, line_no, cur.column}.str()),
                "close the quote; fields with line breaks are not supported");
  }
  if (!was_quoted) cur.text = std::string(trim(cur.text));
  cells.push_back(std::move(cur));
  return cells;
}

namespace {

bool is_missing(const std::string& s) {
  const std::string l = to_lower(s);
  return l.empty() || l == "nan" || l == "na" || l == "null" || l == "none";
}

std::string need_column(const std::map<std::string, std::size_t>& index, const std::string& name,
                        const std::string& what, const std::string& path,
                        const std::vector<std::string>& header) {
  if (index.count(name)) return name;
  const std::string best = closest_match(name, header);
  throw Error(fmt::format("{}: no {} column '{}'; the header has: {}", path, what, name, join(header, ", ")),
              best.empty() ? "pass the right column name with --" + what
                           : "did you mean '" + best + "'? (pass it with --" + what + ")");
}

// Names, patient ids and categories end up in JSON (schema.json, meta.json)
// and HDF5 strings: the file must be UTF-8 (ASCII is).
void check_utf8(const std::string& line, const std::string& path, long line_no) {
  const auto at = invalid_utf8_offset(line);
  if (at == std::string::npos) return;
  throw Error(fmt::format("{}: byte 0x{:02X} is not UTF-8 text", SourceLocation{path, line_no, static_cast<long>(at) + 1}.str(),
                          static_cast<unsigned char>(line[at])),
              "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)");
}

// Sort category labels numerically when they are all numbers, else as text.
void sort_categories(std::vector<std::string>& cats) {
  const bool numeric = std::all_of(cats.begin(), cats.end(), [](const std::string& s) { return parse_double(s).has_value(); });
  if (numeric) {
    std::sort(cats.begin(), cats.end(), [](const std::string& a, const std::string& b) {
      return *parse_double(a) < *parse_double(b);
    });
  } else {
    std::sort(cats.begin(), cats.end());
  }
}

}  // namespace

Dataset read_csv(const DataOptions& options) {
  const std::string& path = options.path;
  if (path.empty()) {
    throw UsageError("no data file given", "pass a CSV with --data FILE (or `sensecf synth --out FILE` to make one)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open data file '" + path + "'", "check the path given to --data");

  std::string line;
  long line_no = 1;
  if (!std::getline(in, line)) throw Error(path + ": the file is empty", "a CSV needs a header line");
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
  check_utf8(line, path, line_no);
  const auto header_cells = split_csv_line(line, path, line_no);
  std::vector<std::string> header;
  std::map<std::string, std::size_t> index;
  for (std::size_t c = 0; c < header_cells.size(); ++c) {
    const std::string& name = header_cells[c].text;
    if (name.empty()) {
      throw Error(fmt::format("{}: column {} has an empty name", SourceLocation{path, 1, header_cells[c].column}.str(), c + 1));
    }
    if (auto it = index.find(name); it != index.end()) {
      throw Error(fmt::format("{}: duplicate column '{}' (columns {} and {})",
                              SourceLocation{path, 1, header_cells[c].column}.str(), name, it->second + 1, c + 1),
                  "rename one of them");
    }
    index[name] = c;
    header.push_back(name);
  }

  need_column(index, options.label, "label", path, header);
  for (const auto& n : options.drop) need_column(index, n, "drop", path, header);
  // The lists a user left at their defaults keep only the columns the file
  // has (DataOptions::infer_*); what a user named must be there.
  std::vector<std::string> inferred;  // what the reader decided, for one info line
  std::string group = options.group;
  if (!group.empty() && options.infer_group && !index.count(group)) {
    inferred.push_back(fmt::format("no group column (no '{}'; every row is its own patient; name one with --group)", group));
    group.clear();
  }
  if (!group.empty()) need_column(index, group, "group", path, header);
  auto present = [&](const std::vector<std::string>& names, bool infer, const char* what) {
    std::vector<std::string> out;
    for (const auto& n : names) {
      if (infer && !index.count(n)) continue;
      out.push_back(need_column(index, n, what, path, header));
    }
    return out;
  };
  std::vector<std::string> categorical = present(options.categorical, options.infer_categorical, "categorical");
  std::vector<std::string> immutable = present(options.immutable, options.infer_immutable, "immutable");
  if (options.infer_immutable && immutable.size() != options.immutable.size()) {
    // Not the synthetic cohort's layout: nothing is immutable unless named.
    immutable.clear();
    inferred.push_back("no immutable features (name them with --immutable)");
  }
  const auto contains = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  if (options.infer_categorical) {
    // Columns with a cell that is not a number (nor missing) hold categories.
    std::vector<bool> text(header.size(), false);
    std::string row;
    long row_no = 1;
    while (std::getline(in, row)) {
      ++row_no;
      if (trim(row).empty()) continue;
      const auto cells = split_csv_line(row, path, row_no);
      for (std::size_t c = 0; c < cells.size() && c < header.size(); ++c) {
        if (!text[c] && !is_missing(cells[c].text) && !parse_double(cells[c].text)) text[c] = true;
      }
    }
    for (std::size_t c = 0; c < header.size(); ++c) {
      const std::string& name = header[c];
      if (!text[c] || name == options.label || name == group || contains(options.drop, name) || contains(categorical, name))
        continue;
      categorical.push_back(name);
      inferred.push_back("'" + name + "' categorical (it holds text)");
    }
    in.clear();
    in.seekg(0);
    std::getline(in, line);  // the header again
  }
  if (!inferred.empty() || (options.infer_categorical && categorical != options.categorical) ||
      (options.infer_immutable && immutable != options.immutable)) {
    spdlog::info("{}: schema inferred: categorical [{}], immutable [{}]{}{}", path, join(categorical, ", "),
                 join(immutable, ", "), inferred.empty() ? "" : "; ", join(inferred, "; "));
  }

  Dataset data;
  data.source = path;
  data.schema.label = options.label;
  data.schema.group = group;
  std::vector<std::size_t> feature_cols;
  for (std::size_t c = 0; c < header.size(); ++c) {
    const std::string& name = header[c];
    if (name == options.label || name == group || contains(options.drop, name)) continue;
    Feature f;
    f.name = name;
    f.kind = contains(categorical, name) ? FeatureKind::kCategorical : FeatureKind::kContinuous;
    f.immutable = contains(immutable, name);
    for (const auto& u : options.units)
      if (u.compare(0, name.size() + 1, name + "=") == 0) f.unit = u.substr(name.size() + 1);
    data.schema.features.push_back(f);
    feature_cols.push_back(c);
  }
  if (feature_cols.empty()) throw Error(path + ": no feature columns left after label, group and --drop");
  for (const auto& n : immutable) {
    if (n == options.label || n == group) throw UsageError("'" + n + "' is the label or group column, not a feature");
  }
  const std::size_t d = feature_cols.size();
  const std::size_t label_col = index.at(options.label);
  const long group_col = group.empty() ? -1 : static_cast<long>(index.at(group));

  std::vector<std::vector<std::string>> cat_text(d);  // raw categorical text per row
  std::vector<double> values;
  std::size_t dropped = 0;
  const bool drop_missing = options.missing == "drop";
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    check_utf8(line, path, line_no);
    const auto cells = split_csv_line(line, path, line_no);
    if (cells.size() != header.size()) {
      throw Error(fmt::format("{}: expected {} fields as in the header, found {}",
                              SourceLocation{path, line_no, 0}.str(), header.size(), cells.size()),
                  "every row needs one value per header column (ragged row)");
    }
    // First pass: detect missing cells in the columns we use.
    bool row_missing = false;
    auto check_missing = [&](std::size_t c, const char* what) {
      if (!is_missing(cells[c].text)) return false;
      if (!drop_missing) {
        throw Error(fmt::format("{}: {} column '{}' is empty or NaN", SourceLocation{path, line_no, cells[c].column}.str(),
                                what, header[c]),
                    "fill the value, or pass --missing drop to skip such rows");
      }
      return true;
    };
    row_missing |= check_missing(label_col, "label");
    if (group_col >= 0) row_missing |= check_missing(static_cast<std::size_t>(group_col), "group");
    for (auto c : feature_cols) row_missing |= check_missing(c, "feature");
    if (row_missing) {
      ++dropped;
      continue;
    }
    const CsvCell& lc = cells[label_col];
    const auto lv = parse_double(lc.text);
    if (!lv || (*lv != 0.0 && *lv != 1.0)) {
      throw Error(fmt::format("{}: label '{}' must be 0 or 1, found '{}'", SourceLocation{path, line_no, lc.column}.str(),
                              options.label, lc.text),
                  "sensecf explains binary classifiers; encode the label as 0/1");
    }
    data.y.push_back(static_cast<int>(*lv));
    data.group.push_back(group_col >= 0 ? cells[static_cast<std::size_t>(group_col)].text
                                        : "row" + std::to_string(data.y.size()));
    for (std::size_t j = 0; j < d; ++j) {
      const CsvCell& cell = cells[feature_cols[j]];
      if (data.schema.features[j].is_categorical()) {
        cat_text[j].push_back(cell.text);
        values.push_back(0.0);  // code filled in below
        continue;
      }
      const auto v = parse_double(cell.text);
      if (!v || !std::isfinite(*v)) {
        throw Error(fmt::format("{}: column '{}' expects a number, found '{}'",
                                SourceLocation{path, line_no, cell.column}.str(), header[feature_cols[j]], cell.text),
                    "if this column holds categories, list it in --categorical");
      }
      values.push_back(*v);
    }
  }
  const std::size_t n = data.y.size();
  if (n == 0) throw Error(path + ": no data rows" + (dropped ? fmt::format(" ({} rows dropped for missing values)", dropped) : ""));
  if (dropped) spdlog::warn("{}: dropped {} of {} rows with missing values (--missing drop)", path, dropped, n + dropped);
  data.x.n_rows = n;
  data.x.n_cols = d;
  data.x.values = std::move(values);

  // Encode categorical columns.
  for (std::size_t j = 0; j < d; ++j) {
    Feature& f = data.schema.features[j];
    if (!f.is_categorical()) continue;
    std::set<std::string> uniq(cat_text[j].begin(), cat_text[j].end());
    f.categories.assign(uniq.begin(), uniq.end());
    sort_categories(f.categories);
    std::map<std::string, int> code;
    for (std::size_t k = 0; k < f.categories.size(); ++k) code[f.categories[k]] = static_cast<int>(k);
    for (std::size_t r = 0; r < n; ++r) data.x.at(r, j) = code.at(cat_text[j][r]);
  }

  // Label must have both classes; features must vary.
  const std::size_t n_pos = data.count_label(1);
  if (n_pos == 0 || n_pos == n) {
    throw Error(fmt::format("{}: label '{}' is always {} ({} rows); a binary label needs both 0 and 1", path,
                            options.label, n_pos ? 1 : 0, n),
                "is --label the right column?");
  }
  for (std::size_t j = 0; j < d; ++j) {
    bool constant = true;
    for (std::size_t r = 1; r < n && constant; ++r) constant = data.x.at(r, j) == data.x.at(0, j);
    if (constant) {
      const Feature& f = data.schema.features[j];
      throw Error(fmt::format("{}: column '{}' is constant ({}) over all {} rows", path, f.name,
                              f.is_categorical() ? f.categories[0] : fmt::format("{}", data.x.at(0, j)), n),
                  "a constant column carries no information; drop it with --drop " + f.name);
    }
  }
  std::vector<std::size_t> all(n);
  for (std::size_t r = 0; r < n; ++r) all[r] = r;
  data.schema.learn_bounds(data.x, all);
  spdlog::debug("{}: {} rows, {} features, {} positive", path, n, d, n_pos);
  return data;
}

namespace {
// The reader trims unquoted fields, so padded ones are quoted.
std::string csv_escape(const std::string& s) { return csv_field(s, /*keep_padding=*/true); }
}  // namespace

void write_csv(const Dataset& data, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write '" + path + "'", "does the directory exist and is it writable?");
  const std::string group_name = data.schema.group.empty() ? "group" : data.schema.group;
  out << csv_escape(group_name);
  for (const auto& f : data.schema.features) out << ',' << csv_escape(f.name);
  out << ',' << csv_escape(data.schema.label) << '\n';
  for (std::size_t r = 0; r < data.size(); ++r) {
    out << csv_escape(data.group[r]);
    for (std::size_t j = 0; j < data.schema.size(); ++j) {
      const Feature& f = data.schema.features[j];
      const double v = data.x.at(r, j);
      if (f.is_categorical()) {
        const auto k = static_cast<std::size_t>(v);
        if (v < 0 || k >= f.categories.size()) {
          throw Error(fmt::format("row {}: feature '{}' has code {} outside its {} categories", r, f.name, v,
                                  f.categories.size()));
        }
        out << ',' << csv_escape(f.categories[k]);
      } else {
        out << ',' << fmt::format("{}", v);
      }
    }
    out << ',' << data.y[r] << '\n';
  }
  if (!out) throw Error("write to '" + path + "' failed (disk full?)");
}

}  // namespace sensecf::data
