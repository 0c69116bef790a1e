// `sensecf synth`: writes a synthetic AI-READI-like cohort (data/synth.h) as CSV.
//
// One row per 2-hour window: participant_id, the 12 features, high_stress. The
// file reads back with the default [data] options (label, group, categorical and
// immutable columns already match). This command only generates and writes; it
// does not split or train (see train-clf).
#include <spdlog/spdlog.h>

#include <set>

#include "commands.h"
#include "sensecf/core/error.h"
#include "sensecf/data/csv.h"
#include "sensecf/data/synth.h"
#include "sensecf/data/synth_raw.h"

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
  data::RawSynthOptions raw;
  std::string raw_dir;
  options.add("synth.raw", &raw_dir,
              "write a synthetic RAW AI-READI cohort (participants.tsv, CGM and Garmin JSON files, "
              "manifests) and its ground truth (ground_truth.csv, ground_truth.windows.csv) into this "
              "folder instead of the feature CSV (synth.windows is then unused)",
              "raw")
      .not_hashed();
  options.add("synth.format", &raw.format, "release layout of --raw: v2 (2.0.0) or v3 (3.0.0, <uuid>/dataset/)",
              "format")
      .choices({"v2", "v3"})
      .not_hashed();  // --raw only: the config hash of the feature CSV stays as it was
  options.add("synth.days", &raw.days, "days of wear per participant (--raw), 1-60", "days").not_hashed();
  options.add_check([&raw] {
    if (raw.days < 1 || raw.days > 60) {
      throw UsageError(fmt::format("synth.days must be in 1..60, got {}", raw.days));
    }
  });
  if (!parse_and_start(options, log, args)) return 0;

  if (!raw_dir.empty()) {
    raw.synth = synth;
    const data::RawSynthSummary s = data::write_raw_cohort(raw, raw_dir);
    const double positive_rate =
        s.windows_kept ? static_cast<double>(s.positives) / static_cast<double>(s.windows_kept) : 0.0;
    spdlog::info(
        "wrote a raw AI-READI {} cohort under {} (dataset root {}): {} participants, {} files, {:.1f} MB; "
        "ground truth: {} windows kept, {} dropped, positive rate {:.3f} (seed {})",
        raw.format, raw_dir, s.dataset_root, s.participants, s.files, static_cast<double>(s.bytes) / 1e6,
        s.windows_kept, s.windows_dropped, positive_rate, synth.seed);
    return 0;
  }

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
