// data.source: the explicit choice of where rows come from (see source.h).
#include "sensecf/data/source.h"

#include "sensecf/core/error.h"

namespace sensecf::data {

std::vector<std::string> source_names() { return {"csv", "synth", "aireadi"}; }

Source parse_source(const std::string& name) {
  if (name == "csv") return Source::kCsv;
  if (name == "synth") return Source::kSynth;
  if (name == "aireadi") return Source::kAiReadi;
  throw UsageError("data.source: unknown source '" + name + "'", "use csv, synth or aireadi");
}

void check_source(const DataOptions& options, const std::string& command) {
  switch (parse_source(options.source)) {
    case Source::kCsv:
      if (options.path.empty()) {
        throw UsageError("data.source = csv needs a file: data.path is empty",
                         command == "sweep"
                             ? "set [data] path = FILE.csv, or source = synth for the synthetic cohort of [synth]"
                             : "pass --data FILE.csv (write a synthetic one with `sensecf synth --out FILE.csv`)");
      }
      return;
    case Source::kSynth:
      if (command != "sweep") {
        throw UsageError("data.source = synth is only for `sensecf sweep` (it writes the cohort to its work "
                         "directory)",
                         "write the cohort with `sensecf synth --out FILE.csv` and pass --data FILE.csv");
      }
      if (!options.path.empty()) {
        throw UsageError("data.path = '" + options.path + "' is set, but data.source = synth does not read it",
                         "set data.source = csv to use the file, or remove data.path for the synthetic cohort");
      }
      return;
    case Source::kAiReadi:
      if (command != "sweep") {
        throw UsageError("data.source = aireadi is read by `sensecf sweep` (its first tasks ingest the release)",
                         "turn the release into a table with `sensecf ingest --aireadi ROOT --out features.csv` and "
                         "pass --data features.csv");
      }
      if (options.path.empty()) {
        throw UsageError("data.source = aireadi needs the release: data.path is empty",
                         "set [data] path = ROOT, the folder that holds participants.tsv (or <uuid>/dataset/)");
      }
      return;
  }
}

Dataset load_dataset(const DataOptions& options, const std::string& command) {
  check_source(options, command);
  if (parse_source(options.source) != Source::kCsv)
    throw Error("internal error: load_dataset reads CSV sources; '" + options.source + "' must be written first");
  return read_csv(options);
}

}  // namespace sensecf::data
