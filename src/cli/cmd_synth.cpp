// `sensecf synth`: writes a synthetic AI-READI-like cohort (data/synth.h) as CSV.
//
// One row per 2-hour window: participant_id, the 12 features, high_stress. The
// file reads back with the default [data] options (label, group, categorical and
// immutable columns already match). This command only generates and writes; it
// does not split or train (see train-clf).
#include <spdlog/spdlog.h>

#include <set>

#include "commands.h"
#include "sensecf/data/csv.h"
#include "sensecf/data/synth.h"

namespace sensecf::cli {

int cmd_synth(const std::vector<std::string>& args) {
  LogOptions log;
  data::SynthOptions synth;
  std::string out = "cohort.csv";
  Options options("synth",
                  "Write a synthetic AI-READI-like cohort (one row per 2-hour window, 12 features, "
                  "label high_stress) as CSV.");
  declare_common_options(options, log);
  data::declare_options(options, synth);
  options.add("synth.out", &out, "CSV file to write", "out").not_hashed();
  if (!parse_and_start(options, log, args)) return 0;

  const data::Dataset cohort = data::make_synthetic_cohort(synth);
  data::write_csv(cohort, out);

  const std::set<std::string> participants(cohort.group.begin(), cohort.group.end());
  const double positive_rate =
      cohort.size() ? static_cast<double>(cohort.count_label(1)) / static_cast<double>(cohort.size()) : 0.0;
  spdlog::info("wrote {}: {} rows, {} participants, positive rate {:.3f} (seed {})", out, cohort.size(),
               participants.size(), positive_rate, synth.seed);
  return 0;
}

}  // namespace sensecf::cli
