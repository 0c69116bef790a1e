// `sensecf report`: Table III, Table IV and Fig. 1/6/7/8 from a results file,
// as markdown, CSV, LaTeX, PNG and SVG (see report/report.h, docs/report.md).
// Prints the paths of every file written, one per line, last.
#include <spdlog/spdlog.h>

#include <iostream>

#include "commands.h"
#include "sensecf/report/report.h"

namespace sensecf::cli {

int cmd_report(const std::vector<std::string>& args) {
  report::ReportOptions report_options;
  LogOptions log;
  Options options("report",
                  "Rebuild the paper's tables and figures from a results file written by `sensecf sweep`:\n"
                  "Table III (CF quality per class), Table IV (label scarcity and recovery with CFs), Fig. 1, 6, 7\n"
                  "and 8, as markdown, CSV and LaTeX tables and gnuplot PNG/SVG figures, with an index.md.\n"
                  "Parts whose rows are missing are skipped with a note in index.md. See docs/report.md.");
  report::declare_options(options, report_options);
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args)) return 0;

  const auto written = report::write_report(report_options);
  spdlog::info("report: wrote {} files to {}", written.size(), report_options.out);
  for (const auto& path : written) std::cout << path << "\n";
  return 0;
}

}  // namespace sensecf::cli
