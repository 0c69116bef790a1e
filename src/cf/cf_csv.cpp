// The counterfactual CSV file (format in cf/cf_csv.h).
#include "sensecf/cf/cf_csv.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/csv.h"

namespace sensecf::cf {
namespace {

std::string format_feature(const data::Feature& f, double v) {
  if (f.is_categorical()) {
    const auto k = static_cast<std::size_t>(v);
    return k < f.categories.size() ? f.categories[k] : fmt::format("{}", v);
  }
  return fmt::format("{}", v);
}

}  // namespace

void write_cfs_csv(const std::string& path, const data::Schema& schema,
                   const std::vector<std::string>& group_values, const std::vector<std::size_t>& rows,
                   const std::vector<QueryResult>& results) {
  for (const auto& r : results) {
    if (r.query >= rows.size() || rows[r.query] >= group_values.size()) {
      throw Error(
          fmt::format("write_cfs_csv: query {} has no data row ({} rows for the queries, {} group values)",
                      r.query, rows.size(), group_values.size()));
    }
  }
  std::ofstream out(path);
  if (!out) throw Error("cannot write '" + path + "'", "does the directory exist?");
  const std::string group = schema.group.empty() ? "group" : schema.group;
  out << "row," << csv_field(group) << ",query,cf_index,found";
  for (const auto& f : schema.features) out << ',' << csv_field(f.name);
  out << ",target,prediction,probability,valid,seconds,note\n";
  for (const auto& r : results) {
    const std::size_t row = rows[r.query];
    const std::string prefix = fmt::format("{},{},{}", row, csv_field(group_values[row]), r.query);
    if (r.cfs.empty()) {
      out << prefix << ",0,0" << std::string(schema.size(), ',') << ',' << r.target << ",,,0," << r.seconds
          << ',' << csv_field(r.note) << '\n';
      continue;
    }
    for (std::size_t k = 0; k < r.cfs.size(); ++k) {
      const auto& c = r.cfs[k];
      out << prefix << ',' << k << ",1";
      for (std::size_t j = 0; j < schema.size(); ++j)
        out << ',' << csv_field(format_feature(schema.features[j], c.x[j]));
      out << ',' << r.target << ',' << (c.p1 > 0.5 ? 1 : 0) << ',' << fmt::format("{}", c.p1) << ','
          << (c.valid ? 1 : 0) << ',' << r.seconds << ',' << csv_field(r.note) << '\n';
    }
  }
  if (!out) throw Error("write to '" + path + "' failed", "is the disk full?");
}

CfsCsv read_cfs_csv(const std::string& path, const data::Schema& schema, std::size_t n_data_rows) {
  return read_cfs_csv(path, schema, n_data_rows, nullptr);
}

CfsCsv read_cfs_csv(const std::string& path, const data::Schema& schema, const std::vector<std::string>& group_values) {
  return read_cfs_csv(path, schema, group_values.size(), &group_values);
}

CfsCsv read_cfs_csv(const std::string& path, const data::Schema& schema, std::size_t n_data_rows,
                    const std::vector<std::string>* group_values) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open '" + path + "'", "write it with `sensecf explain --out`");
  std::string line;
  long line_no = 1;
  if (!std::getline(in, line))
    throw Error(path + ": the file is empty", "write it with `sensecf explain --out`");
  const auto header = data::split_csv_line(line, path, 1);
  std::map<std::string, std::size_t> col;
  for (std::size_t c = 0; c < header.size(); ++c) col[header[c].text] = c;
  for (const std::string name : {"row", "query", "found", "target", "seconds"}) {
    if (!col.count(name))
      throw Error(fmt::format("{}:1: no column '{}'; is this a file from `sensecf explain`?", path, name),
                  "write it with `sensecf explain --out`");
  }
  for (const auto& f : schema.features) {
    if (!col.count(f.name))
      throw Error(fmt::format("{}:1: no column for feature '{}'", path, f.name),
                  "the CFs were computed for another data set or classifier: pass the ones they came from");
  }
  auto number = [&](const data::CsvCell& cell, const char* what) {
    const auto v = parse_double(cell.text);
    if (!v) {
      throw Error(fmt::format("{}: {} expects a number, found '{}'",
                              SourceLocation{path, line_no, cell.column}.str(), what, cell.text),
                  "the file was edited; write it again with `sensecf explain --out`");
    }
    return *v;
  };
  CfsCsv file;
  std::map<std::size_t, std::size_t> query_of_row;  // data row -> query (index into file.rows)
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    const auto cells = data::split_csv_line(line, path, line_no);
    if (cells.size() != header.size()) {
      throw Error(fmt::format("{}: expected {} fields, found {}", SourceLocation{path, line_no, 0}.str(),
                              header.size(), cells.size()),
                  "the file was edited; write it again with `sensecf explain --out`");
    }
    const double row_value = number(cells[col["row"]], "row");
    if (row_value < 0 || row_value != std::floor(row_value)) {
      throw Error(fmt::format("{}: row '{}' is not a row index (a whole number >= 0)",
                              SourceLocation{path, line_no, cells[col["row"]].column}.str(), cells[col["row"]].text),
                  "the file was edited; write it again with `sensecf explain --out`");
    }
    if (row_value >= static_cast<double>(n_data_rows)) {
      throw Error(fmt::format("{}: row {} is outside the data file ({} rows)",
                              SourceLocation{path, line_no, 0}.str(), cells[col["row"]].text, n_data_rows),
                  "the CFs were computed on another data file: pass the data file they came from");
    }
    const auto row = static_cast<std::size_t>(row_value);
    // The second column names the data's group (patient) column: it must agree
    // with the data row, or the file belongs to another data file or order.
    if (group_values && header.size() > 1 && cells[1].text != (*group_values)[row]) {
      throw Error(fmt::format("{}: row {} is patient '{}' in the data file, but '{}' in this file",
                              SourceLocation{path, line_no, cells[1].column}.str(), row, (*group_values)[row],
                              cells[1].text),
                  "the CFs were computed on another data file, or one whose rows were reordered: pass the data "
                  "file they came from");
    }
    auto binary = [&](const char* name) {
      const double v = number(cells[col[name]], name);
      if (v != 0 && v != 1) {
        throw Error(fmt::format("{}: {} must be 0 or 1, found '{}'",
                                SourceLocation{path, line_no, cells[col[name]].column}.str(), name,
                                cells[col[name]].text),
                    "the file was edited; write it again with `sensecf explain --out`");
      }
      return static_cast<int>(v);
    };
    auto [it, inserted] = query_of_row.try_emplace(row, file.rows.size());
    if (inserted) {
      file.rows.push_back(row);
      QueryResult r;
      r.query = it->second;
      r.target = binary("target");
      r.seconds = number(cells[col["seconds"]], "seconds");
      file.results.push_back(r);
    }
    if (binary("found") == 0) continue;
    Counterfactual c;
    for (std::size_t j = 0; j < schema.size(); ++j) {
      const auto& f = schema.features[j];
      const auto& cell = cells[col[f.name]];
      if (f.is_categorical()) {
        const auto pos = std::find(f.categories.begin(), f.categories.end(), cell.text);
        if (pos == f.categories.end()) {
          throw Error(
              fmt::format("{}: '{}' is not a category of '{}' ({})",
                          SourceLocation{path, line_no, cell.column}.str(), cell.text, f.name,
                          join(f.categories, ", ")),
              "the CFs were computed for another data set or classifier: pass the ones they came from");
        }
        c.x.push_back(static_cast<double>(pos - f.categories.begin()));
      } else {
        const double v = number(cell, f.name.c_str());
        if (!std::isfinite(v)) {
          throw Error(fmt::format("{}: {} is '{}', not a finite number",
                                  SourceLocation{path, line_no, cell.column}.str(), f.name, cell.text),
                      "the file was edited; write it again with `sensecf explain --out`");
        }
        c.x.push_back(v);
      }
    }
    file.results[it->second].cfs.push_back(std::move(c));
  }
  return file;
}

}  // namespace sensecf::cf
