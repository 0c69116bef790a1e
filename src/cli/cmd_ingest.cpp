// `sensecf ingest`: an AI-READI release -> the paper's feature table
// (ingest/aireadi.h; the rules in docs/aireadi.md).
//
//   sensecf ingest --aireadi ROOT --out features.csv [--ingest.strict] [--ingest.* ...]
//
// Prints what was kept and dropped and every problem (participant, file,
// record), and writes features.csv, features.windows.csv, features.ingest.json.
// Exit status 0 when a table was written, also when some files had problems;
// 1 when nothing could be written or, with --ingest.strict, at the first problem.
#include <spdlog/spdlog.h>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/ingest/aireadi.h"

namespace sensecf::cli {

int cmd_ingest(const std::vector<std::string>& args) {
  LogOptions log;
  ingest::IngestOptions ingest;
  std::string out = "features.csv";
  Options options("ingest",
                  "Turn an AI-READI release (participants.tsv, Dexcom CGM, Garmin sleep, stress and steps) into the "
                  "feature table: one row per 2-hour window, 12 features, label high_stress (docs/aireadi.md).");
  declare_common_options(options, log);
  options.add("ingest.root", &ingest.root, "the release's folder (holds participants.tsv, or <uuid>/dataset/)",
              "aireadi");
  options.add("ingest.out", &out, "feature CSV to write (side files: <stem>.windows.csv, <stem>.ingest.json)", "out")
      .not_hashed();
  ingest::declare_options(options, ingest);
  if (!parse_and_start(options, log, args)) return 0;
  if (ingest.root.empty()) throw UsageError("ingest: no release given", "pass --aireadi ROOT");

  const auto result = ingest::ingest_aireadi(ingest);
  for (const auto& p : result.problems) spdlog::warn("{}", p.str());
  if (result.problem_count > result.problems.size()) {
    spdlog::warn("... and {} more problems (counted in {})", result.problem_count - result.problems.size(),
                 ingest::summary_path(out));
  }
  ingest::write_ingest_outputs(result, ingest, out);
  for (const auto& line : ingest::summary_lines(result)) spdlog::info("{}", line);
  spdlog::info("wrote {} ({} and {} beside it)", out, ingest::windows_path(out), ingest::summary_path(out));
  return 0;
}

}  // namespace sensecf::cli
