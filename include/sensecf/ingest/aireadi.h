// AI-READI ingest: the released wearable files -> the paper's feature table
// (one row per 2-hour window, the twelve features of `sensecf synth` and the
// high-stress label). The rules, each with its option, are in docs/aireadi.md.
//
//   ingest_aireadi(options)            every participant (or a subset), in parallel
//   write_ingest_outputs(result, out)  <out>, <stem>.windows.csv, <stem>.ingest.json
//
// Nothing here stops at a bad file: every problem is reported with participant
// id, file and record index and the run goes on, unless options.strict.
// Memory is bounded by one participant's records per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf {
class Options;
}

namespace sensecf::ingest {

struct IngestOptions {
  std::string root;                 // the release (data.path / --aireadi)
  int first_hour = 8;               // first window start, local hour
  int last_hour = 19;               // last window start, local hour
  double cgm_low = 40;              // mg/dL that "Low" stands for
  double cgm_high = 400;            // mg/dL that "High" stands for
  double hyper_threshold = 180;     // mg/dL
  double hyper_minutes = 15;        // minimum length of a hyperglycaemic event
  double stress_threshold = 75;     // high stress: mean valid stress above this
  int min_cgm_readings = 18;        // of the 24 a 2-hour window has
  int min_stress_readings = 20;
  double min_activity_minutes = 60;
  double min_sleep_minutes = 180;
  std::string demographics;         // optional TSV: id column + sex or gender (controlled access)
  bool strict = false;              // the first problem is an error
  int threads = 0;                  // participants read at once; 0: every core
};

// Declares [ingest] (keys ingest.*) on `options`; root is not declared here
// (`sensecf ingest --aireadi`, data.path in a sweep).
void declare_options(Options& options, IngestOptions& ingest);

// One row of participants.tsv that ingest uses.
struct ParticipantInfo {
  std::string id;                   // "1001"
  std::string site;                 // clinical_site
  std::string study_group;
  std::string age;                  // as written (checked when ingested)
  std::string split;                // recommended_split
  std::string gender;               // "" when not provided
  bool has_garmin = true;           // wearable_activity_monitor column (absent: true)
  bool has_cgm = true;              // wearable_blood_glucose column
  long line = 0;                    // 1-based line in participants.tsv
};

// The folder that holds participants.tsv: ROOT, ROOT/dataset, or
// ROOT/<only sub-folder>/dataset (a v3 download). Throws a sensecf::Error that
// says what was looked for.
std::string find_dataset_root(const std::string& root);
// participants.tsv (v2 participant_id, v3 person_id), ordered by id (numeric
// when both are numbers). Throws for a file without an id column.
std::vector<ParticipantInfo> read_participants(const std::string& dataset_root);

// A problem in the files: what, and where.
struct Problem {
  std::string participant;
  std::string file;                 // relative to the dataset root; "" for participants.tsv rows
  long record = -1;                 // 0-based index in the body array; -1: the whole file
  std::string what;
  std::string str() const;          // "participant 1001, wearable_.../1001_DEX.json, record 17: ..."
};

// Where a written row came from.
struct WindowInfo {
  std::string participant;
  std::int64_t local_start = 0;     // seconds since the epoch, on the local clock
  int utc_offset = 0;               // seconds
  int cgm_readings = 0;
  int stress_readings = 0;          // valid ones
  double activity_minutes = 0;
  std::string split;                // recommended_split
};

struct ParticipantSummary {
  std::string id;
  std::string zone;                 // "Pacific", ...
  std::size_t windows = 0;          // written
  std::map<std::string, std::size_t> dropped;  // reason -> windows
  std::size_t records = 0;          // JSON records read
  std::size_t bytes = 0;            // bytes of the files read
  std::size_t problems = 0;
};

struct IngestResult {
  data::Dataset features;           // the table (gender "not_provided" when unknown)
  std::vector<WindowInfo> windows;  // one per row of `features`
  std::vector<ParticipantSummary> participants;
  std::vector<Problem> problems;    // the first kMaxListedProblems
  std::size_t problem_count = 0;    // all of them
  std::map<std::string, std::size_t> dropped;  // reason -> windows, over everyone
  std::size_t candidate_windows = 0;
  std::size_t records = 0, bytes = 0;
  double seconds = 0;
  bool gender_provided = false;
  std::string dataset_root;
};
inline constexpr std::size_t kMaxListedProblems = 1000;
// The placeholder of gender when neither participants.tsv nor ingest.demographics has it.
inline constexpr const char* kGenderNotProvided = "not_provided";

// Reads every participant of participants.tsv (or those in `only`, ids) and
// builds the table. Throws only for what makes the whole run impossible (no
// participants.tsv) or, under options.strict, at the first problem.
IngestResult ingest_aireadi(const IngestOptions& options, const std::vector<std::string>& only = {});

// Joins the results of disjoint participant sets (shards), in participant order.
IngestResult merge_results(std::vector<IngestResult> parts);

// Writes <out> (the features, as data::write_csv), <stem>.windows.csv and
// <stem>.ingest.json, each through a temporary file and a rename.
void write_ingest_outputs(const IngestResult& result, const IngestOptions& options, const std::string& out);
// The side files of <out>: "<dir>/<stem>.windows.csv", "<dir>/<stem>.ingest.json".
std::string windows_path(const std::string& out);
std::string summary_path(const std::string& out);

// A fingerprint of what an ingest reads: the options that change its rows,
// the bytes of participants.tsv and the manifests, and the path, size and
// modification time of every wearable file (hashing tens of GB would cost as
// much as the ingest). Equal fingerprints, equal tables: the sweep's cache key
// and resume check.
std::string release_fingerprint(const IngestOptions& options);

// A shard's result as one JSON file and back (the sweep's ingest tasks hand
// them to the task that merges them); exact doubles.
void save_result(const IngestResult& result, const std::string& path);
IngestResult load_result(const std::string& path);

// Whether the table at `features_csv` has real genders (its .ingest.json
// says so); false also when there is no such file yet.
bool table_has_gender(const std::string& features_csv);

// participant id -> recommended_split, from a table's <stem>.windows.csv.
std::map<std::string, std::string> read_recommended_splits(const std::string& features_csv);

// A few lines for the log: rows, participants, dropped windows by reason, problems.
std::vector<std::string> summary_lines(const IngestResult& result);

}  // namespace sensecf::ingest
