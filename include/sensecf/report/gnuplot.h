// gnuplot: finding the program, running a script, and the pieces every figure
// script is built from.
//
// Each figure is one self-contained script (data in inline datablocks) that
// draws <stem>.png and <stem>.svg; a user can edit and rerun it with
// `gnuplot <stem>.gp` in the report directory. PNG uses pngcairo when that
// terminal is built in, else gd's png (the script decides, not this program).
//
// Not here: what a figure shows (figures.h).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sensecf::report {

class Gnuplot {
 public:
  // gnuplot at `program` (a name looked up on PATH, or a path), or nullopt when
  // there is no such executable.
  static std::optional<Gnuplot> find(const std::string& program);
  const std::string& path() const { return path_; }

  struct Run {
    bool ok = false;
    std::string output;  // gnuplot's stdout and stderr
  };
  // Runs `gnuplot <script>` with `dir` as the working directory.
  Run run(const std::filesystem::path& dir, const std::string& script) const;

 private:
  std::string path_;
};

// A gnuplot string literal: 'text' with ' doubled.
std::string gp_quote(const std::string& text);

// An inline datablock `$name << EOD ... EOD`: one line per row, values written
// exactly (NaN as NaN, which gnuplot skips). A row without values and label is
// a blank line; two of them separate the data sets that `index N` selects.
struct DataRow {
  std::vector<double> values;
  std::string label;  // optional last column, quoted (for `with labels`)
};
std::string datablock(const std::string& name, const std::vector<DataRow>& rows);

// The script: a comment header, the datablocks, then `body` drawn once to
// <stem>.png and once to <stem>.svg (width × height pixels).
std::string figure_script(const std::string& stem, const std::string& title_comment, const std::string& datablocks,
                          const std::string& body, int width, int height);

}  // namespace sensecf::report
