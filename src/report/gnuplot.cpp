// Locating and running gnuplot; the common frame of every figure script.
#include "sensecf/report/gnuplot.h"

#include <spdlog/fmt/fmt.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "sensecf/core/strings.h"

namespace sensecf::report {
namespace {

bool is_executable(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0;
}

// A word for /bin/sh: 'text' with ' as '\''.
std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  return fmt::format("{}", v);
}

}  // namespace

std::optional<Gnuplot> Gnuplot::find(const std::string& program) {
  Gnuplot g;
  if (program.find('/') != std::string::npos) {
    if (!is_executable(program)) return std::nullopt;
    g.path_ = program;
    return g;
  }
  const char* path_env = std::getenv("PATH");
  for (const auto& dir : split_list(path_env ? path_env : "", ':')) {
    if (dir.empty()) continue;
    const auto candidate = std::filesystem::path(dir) / program;
    if (is_executable(candidate)) {
      g.path_ = candidate.string();
      return g;
    }
  }
  return std::nullopt;
}

Gnuplot::Run Gnuplot::run(const std::filesystem::path& dir, const std::string& script) const {
  Run r;
  const std::string command =
      "cd " + shell_quote(dir.string()) + " && " + shell_quote(path_) + " " + shell_quote(script) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) {
    r.output = "cannot start " + path_;
    return r;
  }
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return r;
}

std::string gp_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string datablock(const std::string& name, const std::vector<DataRow>& rows) {
  std::string out = "$" + name + " << EOD\n";
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.values.size(); ++i) out += (i ? " " : "") + number(row.values[i]);
    if (!row.label.empty()) {
      std::string label = row.label;  // datablock labels are double-quoted fields
      for (auto& c : label) if (c == '"') c = '\'';
      out += (row.values.empty() ? "\"" : " \"") + label + "\"";
    }
    out += "\n";
  }
  return out + "EOD\n";
}

std::string figure_script(const std::string& stem, const std::string& title_comment, const std::string& datablocks,
                          const std::string& body, int width, int height) {
  std::string out;
  out += "# " + stem + ".gp: " + title_comment + "\n";
  out += "# Written by `sensecf report`; redraw with `gnuplot " + stem + ".gp` in this directory.\n";
  out += "# Draws " + stem + ".png and " + stem + ".svg.\n\n";
  out += datablocks + "\n";
  out += "set encoding utf8\n";
  out += fmt::format(
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{\n"
      "  set terminal pngcairo size {0},{1} noenhanced font ',10'\n"
      "}} else {{\n"
      "  set terminal png size {0},{1} noenhanced\n"
      "}}\n",
      width, height);
  out += "set output " + gp_quote(stem + ".png") + "\n" + body + "unset output\n\n";
  out += fmt::format("set terminal svg size {},{} noenhanced font 'sans,10' background rgb 'white'\n", width, height);
  out += "set output " + gp_quote(stem + ".svg") + "\n" + body + "unset output\n";
  return out;
}

}  // namespace sensecf::report
