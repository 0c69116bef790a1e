// Markdown, LaTeX and CSV writers for the report's tables.
#include "sensecf/report/text_table.h"

#include <spdlog/fmt/fmt.h>

#include <cmath>
#include <fstream>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace sensecf::report {
namespace {

// Fixed-point text without a "-0.00".
std::string fixed(double v, int decimals) {
  std::string s = fmt::format("{:.{}f}", v, decimals);
  if (s.front() == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

// +1 / -1 / 0: the sign of the mean as printed.
int printed_sign(const Cell& c) {
  if (c.value.n == 0) return 0;
  const std::string s = fixed(c.value.mean, c.decimals);
  if (s.find_first_not_of("-0.") == std::string::npos) return 0;
  return s.front() == '-' ? -1 : 1;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

std::string markdown_cell(const Cell& c) {
  if (!c.is_number) return markdown_escape(c.text);
  std::string s = format_plain(c);
  if (c.sign_arrow && printed_sign(c) != 0) s += printed_sign(c) > 0 ? " ↑" : " ↓";
  if (c.value.n > 0 && c.mark == 1) s = "**" + s + "**";
  if (c.value.n > 0 && c.mark == 2) s = "_" + s + "_";
  return s;
}

std::string latex_number(double v, int decimals) {
  std::string s = fixed(v, decimals);
  return s.front() == '-' ? "$-$" + s.substr(1) : s;
}

std::string latex_cell(const Cell& c) {
  if (!c.is_number) return latex_escape(c.text);
  if (c.value.n == 0) return "--";
  std::string s = latex_number(c.value.mean, c.decimals);
  if (std::isfinite(c.value.sd)) s += " $\\pm$ " + latex_number(c.value.sd, c.decimals);
  if (c.percent) s += "\\%";
  if (c.mark == 1) s = "\\textbf{" + s + "}";
  if (c.mark == 2) s = "\\underline{" + s + "}";
  if (c.sign_arrow && printed_sign(c) != 0) s += printed_sign(c) > 0 ? "~$\\uparrow$" : "~$\\downarrow$";
  return s;
}

}  // namespace

Cell Cell::label(std::string text) {
  Cell c;
  c.text = std::move(text);
  return c;
}

Cell Cell::number(const MeanSd& value, int decimals, bool percent, bool sign_arrow) {
  Cell c;
  c.is_number = true;
  c.value = value;
  c.decimals = decimals;
  c.percent = percent;
  c.sign_arrow = sign_arrow;
  return c;
}

std::string format_plain(const Cell& c) {
  if (!c.is_number) return c.text;
  if (c.value.n == 0) return "–";
  std::string s = fixed(c.value.mean, c.decimals);
  if (std::isfinite(c.value.sd)) s += " ± " + fixed(c.value.sd, c.decimals);
  if (c.percent) s += "%";
  return s;
}

std::string markdown_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|' || ch == '*' || ch == '_' || ch == '`' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

std::string latex_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '\\': out += "\\textbackslash{}"; break;
      case '&': case '%': case '$': case '#': case '_': case '{': case '}': out += '\\'; out += ch; break;
      case '~': out += "\\textasciitilde{}"; break;
      case '^': out += "\\textasciicircum{}"; break;
      default: out += ch;
    }
  }
  // The few non-ASCII characters the report's own labels use.
  out = replace_all(out, "↑", "$\\uparrow$");
  out = replace_all(out, "↓", "$\\downarrow$");
  out = replace_all(out, "±", "$\\pm$");
  out = replace_all(out, "—", "---");
  out = replace_all(out, "–", "--");
  return out;
}

std::string to_markdown(const DisplayTable& t) {
  const std::size_t n_cols = t.header.size();
  std::vector<std::string> header = t.header;
  if (!t.groups.empty()) {
    std::size_t col = 0;
    for (const auto& [name, span] : t.groups) {
      for (std::size_t k = 0; k < span && col < n_cols; ++k, ++col) {
        if (!name.empty()) header[col] = name + " " + header[col];
      }
    }
  }
  std::string out;
  if (!t.caption.empty()) out += t.caption + "\n\n";
  out += "|";
  for (const auto& h : header) out += " " + markdown_escape(h) + " |";
  out += "\n|";
  for (std::size_t c = 0; c < n_cols; ++c) out += c < t.align.size() && t.align[c] == 'r' ? "---:|" : "---|";
  out += "\n";
  for (const auto& row : t.rows) {
    out += "|";
    if (row.section) {
      out += " **" + markdown_escape(row.cells.at(0).text) + "** |";
      for (std::size_t c = 1; c < n_cols; ++c) out += " |";
    } else {
      for (std::size_t c = 0; c < n_cols; ++c) out += " " + (c < row.cells.size() ? markdown_cell(row.cells[c]) : "") + " |";
    }
    out += "\n";
  }
  if (!t.legend.empty()) out += "\n" + t.legend + "\n";
  return out;
}

std::string to_latex(const DisplayTable& t) {
  const std::size_t n_cols = t.header.size();
  std::string out;
  out += "% Needs \\usepackage{booktabs}.\n";
  out += "\\begin{table}[t]\n\\centering\n";
  std::string caption = latex_escape(t.caption);
  if (!t.legend.empty()) caption += " " + latex_escape(t.legend);
  out += "\\caption{" + caption + "}\n";
  if (!t.label.empty()) out += "\\label{" + t.label + "}\n";
  out += "\\begin{tabular}{" + t.align + "}\n\\toprule\n";
  if (!t.groups.empty()) {
    std::string rules;
    std::size_t col = 1;
    bool first = true;
    for (const auto& [name, span] : t.groups) {
      out += first ? "" : " & ";
      first = false;
      if (name.empty()) {
        for (std::size_t k = 1; k < span; ++k) out += " & ";
      } else {
        out += "\\multicolumn{" + std::to_string(span) + "}{c}{" + latex_escape(name) + "}";
        rules += fmt::format("\\cmidrule(lr){{{}-{}}} ", col, col + span - 1);
      }
      col += span;
    }
    out += " \\\\\n";
    if (!rules.empty()) out += rules + "\n";
  }
  for (std::size_t c = 0; c < n_cols; ++c) out += (c ? " & " : "") + latex_escape(t.header[c]);
  out += " \\\\\n\\midrule\n";
  for (const auto& row : t.rows) {
    if (row.section) {
      out += "\\midrule\n\\multicolumn{" + std::to_string(n_cols) + "}{l}{\\textit{" +
             latex_escape(row.cells.at(0).text) + "}} \\\\\n";
      continue;
    }
    for (std::size_t c = 0; c < n_cols; ++c) {
      out += (c ? " & " : "") + (c < row.cells.size() ? latex_cell(row.cells[c]) : std::string());
    }
    out += " \\\\\n";
  }
  out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  return out;
}

std::string csv_number(double v) {
  if (!std::isfinite(v)) return "";
  return fmt::format("{}", v);
}

std::string to_csv(const CsvTable& t) {
  auto line = [](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < cells.size(); ++c) out += (c ? "," : "") + csv_field(cells[c]);
    return out + "\n";
  };
  std::string out = line(t.header);
  for (const auto& row : t.rows) out += line(row);
  return out;
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write '" + path.string() + "'", "does the --out directory exist and is it writable?");
  out << text;
  if (!out) throw Error("write to '" + path.string() + "' failed", "is the disk full?");
}

}  // namespace sensecf::report
