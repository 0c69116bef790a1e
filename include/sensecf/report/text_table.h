// Tables as text: one display model written as GitHub markdown or LaTeX
// (booktabs), and plain CSV for machines.
//
// The display model holds formatted-on-write cells (a label, or a mean ± sd with
// its decimals, unit, sign arrow and best/second mark); each writer does its own
// escaping. CSV is a separate, flat model: the tables' CSV files are long/wide
// data for pandas, not a copy of the display layout.
//
// Not here: what goes into a table (tables.h).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "sensecf/report/summary.h"

namespace sensecf::report {

struct Cell {
  std::string text;       // a label cell (used when !is_number)
  bool is_number = false;
  MeanSd value;
  int decimals = 2;
  bool percent = false;   // a "%" after the number
  bool sign_arrow = false;// ↑ after a positive mean, ↓ after a negative one (Table IV)
  int mark = 0;           // 1: best (bold), 2: second best (markdown italic, LaTeX underline)

  static Cell label(std::string text);
  static Cell number(const MeanSd& value, int decimals, bool percent = false, bool sign_arrow = false);
};

struct DisplayRow {
  std::vector<Cell> cells;
  bool section = false;  // a heading row: cells[0].text spans the whole table
};

struct DisplayTable {
  std::string caption;  // one line, above the table
  std::string legend;   // one line, below the table (markdown) / appended to the caption (LaTeX)
  std::string label;    // LaTeX \label
  // Column groups above the header (LaTeX \multicolumn; markdown prefixes each
  // header cell with its group's name). Spans add up to the number of columns.
  std::vector<std::pair<std::string, std::size_t>> groups;
  std::vector<std::string> header;
  std::string align;    // one letter per column: 'l' or 'r'
  std::vector<DisplayRow> rows;
};

std::string to_markdown(const DisplayTable& table);
std::string to_latex(const DisplayTable& table);

// "0.70 ± 0.14", "-37.50 ± 17.68%", "0.70" (one value), "–" (none), as markdown
// shows it (without marks and arrows).
std::string format_plain(const Cell& cell);

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};
std::string to_csv(const CsvTable& table);
// Shortest text that reads back as the same double; "" for NaN / infinity.
std::string csv_number(double v);

std::string markdown_escape(const std::string& text);
std::string latex_escape(const std::string& text);

// Writes `text` to `path`; throws sensecf::Error naming the path on failure.
void write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace sensecf::report
