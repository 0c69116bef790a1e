// AI-READI ingest: participants.tsv and manifests, the four wearable files of
// each participant, local time, and the windows' features (docs/aireadi.md).
//
// Per participant: the CGM, sleep, stress and step files are streamed
// (json_records.h) into compact UTC series, the participant's zone is chosen,
// the series move to the local clock, and every candidate window is either
// written or counted under the first rule it breaks. Participants run on a
// pool of threads; each keeps only its own series.
#include "sensecf/ingest/aireadi.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "json_records.h"
#include "sensecf/core/civil_time.h"
#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/csv.h"
#include "sensecf/data/synth.h"

namespace sensecf::ingest {
namespace fs = std::filesystem;

void declare_options(Options& options, IngestOptions& o) {
  options.add("ingest.first_hour", &o.first_hour, "first window start (local hour, 0-23)");
  options.add("ingest.last_hour", &o.last_hour, "last window start (local hour, 0-23); windows are 2 h, stride 1 h");
  options.add("ingest.cgm_low", &o.cgm_low, "mg/dL a CGM reading of \"Low\" stands for (Dexcom: below 40)");
  options.add("ingest.cgm_high", &o.cgm_high, "mg/dL a CGM reading of \"High\" stands for (Dexcom: above 400)");
  options.add("ingest.hyper_threshold", &o.hyper_threshold, "hyperglycaemic event: readings above this (mg/dL)");
  options.add("ingest.hyper_minutes", &o.hyper_minutes, "hyperglycaemic event: at least this long (minutes)");
  options.add("ingest.stress_threshold", &o.stress_threshold,
              "label 1 (high stress) when a window's mean valid Garmin stress is above this");
  options.add("ingest.min_cgm_readings", &o.min_cgm_readings, "drop windows with fewer CGM readings (24 expected)");
  options.add("ingest.min_stress_readings", &o.min_stress_readings, "drop windows with fewer valid stress values");
  options.add("ingest.min_activity_minutes", &o.min_activity_minutes,
              "drop windows whose step records cover fewer minutes");
  options.add("ingest.min_sleep_minutes", &o.min_sleep_minutes,
              "drop windows whose night before has fewer minutes of sleep stages");
  options.add("ingest.demographics", &o.demographics,
              "TSV with the participant id column and sex or gender (controlled access); empty: placeholder");
  options.add("ingest.strict", &o.strict, "stop at the first problem in the files instead of reporting it")
      .not_hashed();
  options.add("ingest.threads", &o.threads, "participants read at once (0: every core)").not_hashed();
  options.add_check([&o] {
    if (o.first_hour < 0 || o.last_hour > 22 || o.first_hour > o.last_hour) {
      throw UsageError(
          fmt::format("ingest.first_hour/last_hour: need 0 <= first <= last <= 22, got {} and {}",
                      o.first_hour, o.last_hour),
          "window start hours, e.g. ingest.first_hour = 8 and ingest.last_hour = 19 (the defaults)");
    }
    if (!(o.hyper_minutes > 0) || o.min_cgm_readings < 1 || o.min_stress_readings < 1 ||
        o.min_activity_minutes < 0 || o.min_sleep_minutes < 0) {
      throw UsageError(
          "ingest: hyper_minutes and min_cgm/stress_readings must be positive, "
          "min_activity/sleep_minutes >= 0",
          "the defaults are hyper_minutes = 15, min_cgm_readings = 18, min_stress_readings = 20, "
          "min_activity_minutes = 60, min_sleep_minutes = 180");
    }
  });
}

std::string Problem::str() const {
  std::string where = "participant " + participant;
  if (!file.empty()) where += ", " + file;
  if (record >= 0) where += fmt::format(", record {}", record);
  return where + ": " + what;
}

// ---------------------------------------------------------------------------
// Layout: the dataset root, participants.tsv, manifests.

namespace {

constexpr const char* kCgmDir = "wearable_blood_glucose/continuous_glucose_monitoring/dexcom_g6";
constexpr const char* kGarminDir = "wearable_activity_monitor";

struct Tsv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<long> lines;
  long column(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (to_lower(header[i]) == name) return static_cast<long>(i);
    return -1;
  }
};

Tsv read_tsv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open " + path, "check that the file exists and is readable");
  Tsv t;
  std::string line;
  long no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (trim(line).empty()) continue;
    if (t.header.empty()) {
      t.header = split_list(line, '\t');  // cells trimmed (a CR too)
      if (!t.header.empty() && starts_with(t.header[0], "\xEF\xBB\xBF")) t.header[0] = t.header[0].substr(3);
      continue;
    }
    t.rows.push_back(split_list(line, '\t'));
    t.lines.push_back(no);
  }
  return t;
}

// The id column of participants.tsv and the manifests: v3 person_id, v2 participant_id.
long id_column(const Tsv& t, const std::string& path) {
  long c = t.column("person_id");
  if (c < 0) c = t.column("participant_id");
  if (c < 0) {
    throw Error(fmt::format("{}: no person_id (v3) or participant_id (v2) column; the header is: {}", path,
                            join(t.header, ", ")),
                "is this an AI-READI participants.tsv or manifest?");
  }
  return c;
}

// The sex or gender column (controlled access), -1 when there is none.
long gender_column(const Tsv& t) {
  const long sex = t.column("sex");
  return sex >= 0 ? sex : t.column("gender");
}

std::string cell(const std::vector<std::string>& row, long column) {
  return column >= 0 && static_cast<std::size_t>(column) < row.size() ? row[static_cast<std::size_t>(column)] : "";
}

bool id_less(const std::string& a, const std::string& b) {
  const auto na = parse_int(a), nb = parse_int(b);
  if (na && nb) return *na < *nb;
  if (na != nb) return static_cast<bool>(na);  // numbers first
  return a < b;
}

// id -> path (relative to the dataset root, or "None") for each file column of a manifest.
using Manifest = std::map<std::string, std::map<std::string, std::string>>;

Manifest read_manifest(const std::string& path, const std::vector<std::string>& columns) {
  Manifest m;
  if (!fs::exists(path)) return m;
  const Tsv t = read_tsv(path);
  const long id = id_column(t, path);
  for (const auto& row : t.rows) {
    auto& entry = m[cell(row, id)];
    for (const auto& c : columns) {
      const long col = t.column(c);
      if (col < 0) continue;
      std::string v = cell(row, col);
      if (v == "None" || v == "none" || v.empty()) v = "";
      while (!v.empty() && v.front() == '/') v.erase(0, 1);
      entry[c] = v.empty() ? std::string("None") : v;
    }
  }
  return m;
}

}  // namespace

std::string find_dataset_root(const std::string& root) {
  if (root.empty()) throw UsageError("no AI-READI folder given", "pass --aireadi ROOT (ingest) or data.path = ROOT (sweep)");
  if (!fs::is_directory(root)) {
    throw UsageError(fmt::format("AI-READI folder {} does not exist or is not a folder", root),
                     "pass the folder that holds participants.tsv");
  }
  if (fs::exists(fs::path(root) / "participants.tsv")) return root;
  if (fs::exists(fs::path(root) / "dataset" / "participants.tsv")) return (fs::path(root) / "dataset").string();
  std::vector<fs::path> candidates;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && fs::exists(e.path() / "dataset" / "participants.tsv")) candidates.push_back(e.path() / "dataset");
  }
  if (candidates.size() == 1) return candidates[0].string();
  if (candidates.size() > 1) {
    throw UsageError(fmt::format("{} holds {} AI-READI datasets ({}, ...)", root, candidates.size(),
                                 candidates[0].string()),
                     "pass the one to read");
  }
  throw UsageError(fmt::format("{} is not an AI-READI release: no participants.tsv in it, in {}/dataset or in "
                               "<sub-folder>/dataset",
                               root, root),
                   "pass the folder that holds participants.tsv (a v3 download: <uuid>/dataset)");
}

std::vector<ParticipantInfo> read_participants(const std::string& dataset_root) {
  const std::string path = (fs::path(dataset_root) / "participants.tsv").string();
  const Tsv t = read_tsv(path);
  const long id = id_column(t, path);
  const long site = t.column("clinical_site"), group = t.column("study_group"), age = t.column("age");
  const long split = t.column("recommended_split");
  const long gender = gender_column(t);
  const long garmin = t.column("wearable_activity_monitor"), cgm = t.column("wearable_blood_glucose");
  std::vector<ParticipantInfo> out;
  for (std::size_t i = 0; i < t.rows.size(); ++i) {
    const auto& row = t.rows[i];
    ParticipantInfo p;
    p.id = cell(row, id);
    if (p.id.empty()) continue;
    p.site = cell(row, site);
    p.study_group = cell(row, group);
    p.age = cell(row, age);
    p.split = cell(row, split);
    p.gender = to_lower(cell(row, gender));
    p.has_garmin = garmin < 0 || to_lower(cell(row, garmin)) != "false";
    p.has_cgm = cgm < 0 || to_lower(cell(row, cgm)) != "false";
    p.line = t.lines[i];
    out.push_back(std::move(p));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return id_less(a.id, b.id); });
  return out;
}

// ---------------------------------------------------------------------------
// One participant.

namespace {

enum Stage { kAwake, kLight, kDeep, kRem, kNumStages };
constexpr std::array<const char*, kNumStages> kStageNames = {"awake", "light", "deep", "rem"};

struct Reading {
  std::int64_t t;  // seconds, UTC then local
  double value;
};
struct Interval {
  std::int64_t start, end;  // seconds, UTC then local
  double value;             // steps (NaN: unknown) or the stage index
  std::int64_t seconds;     // end - start in UTC: the real length, also across a DST change
};

// The participant's series and what went wrong reading them.
struct Series {
  std::vector<Reading> cgm, stress;
  std::vector<Interval> sleep, steps;
  std::vector<std::string> zones;  // header timezones, in file order
  std::size_t records = 0, bytes = 0;
};

// Column order of the table (as `sensecf synth`).
enum Col : std::size_t {
  kCAwake, kCLight, kCDeep, kCRem, kCSteps, kCGlucose, kCHyper, kCTir, kCAge, kCGender, kCMedication,
  kCSubgroup, kNumCols
};
// The categories of the table's medication and subgroup columns (data/synth.h).
const std::vector<std::string>& categories_of(const char* feature) {
  static const data::Schema schema = data::cohort_schema({kGenderNotProvided});
  return schema.features[schema.index_of(feature)].categories;
}

double round_to(double v, double scale) { return std::round(v * scale) / scale; }

// The outcome of one participant, merged in id order afterwards.
struct ParticipantOutput {
  ParticipantSummary summary;
  std::vector<std::array<double, kNumCols>> rows;  // gender column unset: `gender` says it
  std::vector<int> labels;
  std::vector<WindowInfo> windows;
  std::string gender;
  std::vector<Problem> problems;
  std::size_t problem_count = 0;
  std::map<std::string, std::size_t> dropped;
  std::size_t candidates = 0;
};

class Reporter {
 public:
  Reporter(const ParticipantInfo& p, bool strict, ParticipantOutput& out) : p_(p), strict_(strict), out_(out) {}
  void operator()(const std::string& file, long record, const std::string& what) {
    Problem problem{p_.id, file, record, what};
    if (strict_) throw Error(problem.str(), "the run stops here because of --ingest.strict; without it the problem is "
                                            "reported and the rest is read");
    ++out_.problem_count;
    if (out_.problems.size() < kMaxListedProblems) out_.problems.push_back(std::move(problem));
  }

 private:
  const ParticipantInfo& p_;
  bool strict_;
  ParticipantOutput& out_;
};

std::optional<std::int64_t> time_at(const Record& r, std::initializer_list<const char*> paths) {
  for (const char* path : paths) {
    const Leaf* leaf = r.find(path);
    if (leaf && leaf->kind == Leaf::Kind::kString) return parse_utc_timestamp(leaf->text);
  }
  return std::nullopt;
}

// A leaf's number: a JSON number, or a string that holds one ("70").
std::optional<double> number_of(const Leaf* leaf) {
  if (!leaf) return std::nullopt;
  if (leaf->kind == Leaf::Kind::kInteger || leaf->kind == Leaf::Kind::kNumber) return leaf->number;
  if (leaf->kind == Leaf::Kind::kString) return parse_double(leaf->text);
  return std::nullopt;
}

std::string describe(const Leaf* leaf) {
  if (!leaf) return "missing";
  switch (leaf->kind) {
    case Leaf::Kind::kString: return "\"" + leaf->text.substr(0, 40) + "\"";
    case Leaf::Kind::kNull: return "null";
    case Leaf::Kind::kBool: return leaf->number ? "true" : "false";
    default: return fmt::format("{}", leaf->number);
  }
}

// Streams one file into `series`; a missing file, a truncated file, a bad record
// is reported, never thrown (unless strict).
void read_file(const std::string& root, const std::string& rel, const std::string& body_key, Series& series,
               Reporter& report, const std::function<void(const Record&, const std::string&)>& on_record) {
  const std::string path = (fs::path(root) / rel).string();
  if (!fs::exists(path)) {
    report(rel, -1, "file missing");
    return;
  }
  const ReadResult r = read_records(path, body_key, [&](const Record& rec) { on_record(rec, rel); });
  if (!r.opened) {
    report(rel, -1, r.error);
    return;
  }
  series.records += r.records;
  series.bytes += r.bytes;
  if (!r.header_timezone.empty()) series.zones.push_back(r.header_timezone);
  if (!r.ok) {
    report(rel, static_cast<long>(r.records),
           fmt::format("{}; the file ends or breaks inside this record (truncated?): the {} records before it are "
                       "used",
                       r.error, r.records));
  } else if (!r.body_found) {
    report(rel, -1, fmt::format("no body.{} array (nor a body array) in the file", body_key));
  }
}

class ParticipantReader {
 public:
  ParticipantReader(const IngestOptions& o, const std::string& root, const ParticipantInfo& p, const Manifest& cgm,
                    const Manifest& garmin, const std::map<std::string, std::string>& demographics)
      : o_(o), root_(root), p_(p), cgm_manifest_(cgm), garmin_manifest_(garmin), demographics_(demographics) {}

  ParticipantOutput run() {
    ParticipantOutput out;
    out.summary.id = p_.id;
    Reporter report(p_, o_.strict, out);

    // Immutables first: a participant without them contributes nothing.
    const auto age = parse_double(p_.age);
    const bool age_ok = age && *age >= 0 && *age < 130;
    const std::string medication = data::medication_of_study_group(p_.study_group);
    if (!age_ok) {
      report("participants.tsv", -1, fmt::format("line {}: age '{}' is not a number of years; participant skipped",
                                                 p_.line, p_.age));
    }
    if (medication.empty()) {
      report("participants.tsv", -1,
             fmt::format("line {}: study_group '{}' is none of {}; participant skipped", p_.line, p_.study_group,
                         join(categories_of("subgroup"), ", ")));
    }
    out.gender = p_.gender;
    if (out.gender.empty()) {
      const auto it = demographics_.find(p_.id);
      if (it != demographics_.end()) out.gender = it->second;
    }
    if (!age_ok || medication.empty()) return finish(out);

    if (!p_.has_cgm) report("participants.tsv", -1, fmt::format("line {}: wearable_blood_glucose is FALSE: no CGM data", p_.line));
    if (!p_.has_garmin) {
      report("participants.tsv", -1,
             fmt::format("line {}: wearable_activity_monitor is FALSE: no sleep, stress or step data", p_.line));
    }
    Series s;
    const auto cgm_file = file_of(cgm_manifest_, "glucose_filepath",
                                  fmt::format("{}/{}/{}_DEX.json", kCgmDir, p_.id, p_.id), p_.has_cgm,
                                  "wearable_blood_glucose", report);
    const auto sleep_file = garmin_file("sleep", "sleep_filepath", "sleep", report);
    const auto stress_file = garmin_file("stress", "stress_level_filepath", "stress", report);
    const auto steps_file = garmin_file("physical_activity", "physical_activity_filepath", "activity", report);

    if (cgm_file) read_file(root_, *cgm_file, "cgm", s, report, [&](const Record& r, const std::string& f) { cgm(r, f, s, report); });
    if (sleep_file) read_file(root_, *sleep_file, "sleep", s, report, [&](const Record& r, const std::string& f) { sleep(r, f, s, report); });
    if (stress_file) read_file(root_, *stress_file, "stress", s, report, [&](const Record& r, const std::string& f) { stress(r, f, s, report); });
    if (steps_file) read_file(root_, *steps_file, "activity", s, report, [&](const Record& r, const std::string& f) { steps(r, f, s, report); });
    out.summary.records = s.records;
    out.summary.bytes = s.bytes;

    const UsZone zone = zone_of(s, report);
    out.summary.zone = zone_name(zone);
    to_local(zone, s);
    windows(s, zone, *age, medication, out);
    return finish(out);
  }

 private:
  ParticipantOutput& finish(ParticipantOutput& out) {
    out.summary.problems = out.problem_count;
    out.summary.windows = out.rows.size();
    out.summary.dropped = out.dropped;
    return out;
  }

  // The file of one modality: the manifest's path when it has the participant,
  // else the release's naming convention; nullopt (reported) when the
  // participant has none.
  std::optional<std::string> file_of(const Manifest& manifest, const std::string& column, const std::string& convention,
                                     bool listed, const std::string& datatype, Reporter& report) {
    if (!listed) return std::nullopt;  // reported once in run()
    const auto it = manifest.find(p_.id);
    if (it != manifest.end()) {
      const auto c = it->second.find(column);
      if (c != it->second.end()) {
        if (c->second == "None") {
          report(datatype + "/manifest.tsv", -1, fmt::format("{} is None: no such file", column));
          return std::nullopt;
        }
        return c->second;
      }
    }
    return convention;
  }

  std::optional<std::string> garmin_file(const char* folder, const char* column, const char* suffix, Reporter& report) {
    return file_of(garmin_manifest_, column,
                   fmt::format("{}/{}/garmin_vivosmart5/{}/{}_{}.json", kGarminDir, folder, p_.id, p_.id, suffix),
                   p_.has_garmin, "wearable_activity_monitor", report);
  }

  void cgm(const Record& r, const std::string& file, Series& s, Reporter& report) {
    const auto t = time_at(r, {"effective_time_frame.time_interval.start_date_time", "effective_time_frame.date_time"});
    if (!t) {
      report(file, static_cast<long>(r.index), "no readable effective_time_frame.time_interval.start_date_time");
      return;
    }
    const Leaf* v = r.find("blood_glucose.value");
    const auto number = number_of(v);
    double value = 0;
    if (number && std::isfinite(*number) && *number > 0) {
      value = *number;
    } else if (v && v->kind == Leaf::Kind::kString && to_lower(v->text) == "low") {
      value = o_.cgm_low;
    } else if (v && v->kind == Leaf::Kind::kString && to_lower(v->text) == "high") {
      value = o_.cgm_high;
    } else {
      report(file, static_cast<long>(r.index),
             fmt::format("blood_glucose.value is {}: expected mg/dL, \"Low\" or \"High\"", describe(v)));
      return;
    }
    s.cgm.push_back({*t, value});
  }

  void sleep(const Record& r, const std::string& file, Series& s, Reporter& report) {
    const Leaf* state = r.find("sleep_stage_state");
    if (!state || state->kind != Leaf::Kind::kString) {
      report(file, static_cast<long>(r.index), fmt::format("sleep_stage_state is {}", describe(state)));
      return;
    }
    const std::string name = to_lower(state->text);
    if (name == "unknown") return;
    int stage = -1;
    for (int k = 0; k < kNumStages; ++k)
      if (name == kStageNames[k]) stage = k;
    if (stage < 0) {
      report(file, static_cast<long>(r.index),
             fmt::format("unknown sleep_stage_state \"{}\" (expected awake, light, deep, rem or unknown)", state->text));
      return;
    }
    // v2: sleep_stage_time_frame, v3: effective_time_frame.
    const auto start = time_at(r, {"sleep_stage_time_frame.time_interval.start_date_time",
                                   "effective_time_frame.time_interval.start_date_time"});
    const auto end = time_at(r, {"sleep_stage_time_frame.time_interval.end_date_time",
                                 "effective_time_frame.time_interval.end_date_time"});
    if (!start || !end) {
      report(file, static_cast<long>(r.index),
             "no readable sleep_stage_time_frame (v2) or effective_time_frame (v3) time_interval");
      return;
    }
    if (*end <= *start || *end - *start > 4 * 3600) {
      report(file, static_cast<long>(r.index),
             fmt::format("sleep interval of {} s (expected 0 < length <= 4 h); left out", *end - *start));
      return;
    }
    s.sleep.push_back({*start, *end, static_cast<double>(stage), *end - *start});
  }

  void stress(const Record& r, const std::string& file, Series& s, Reporter& report) {
    const auto t = time_at(r, {"effective_time_frame.date_time"});
    const Leaf* v = r.find("stress.value");
    if (!t) {
      report(file, static_cast<long>(r.index), "no readable effective_time_frame.date_time");
      return;
    }
    if (!v || !(v->kind == Leaf::Kind::kInteger || v->kind == Leaf::Kind::kNumber) || v->number > 100) {
      report(file, static_cast<long>(r.index), fmt::format("stress.value is {}: expected 0-100, -1 or -2", describe(v)));
      return;
    }
    s.stress.push_back({*t, v->number});  // negative: a device state, kept to be counted as invalid
  }

  void steps(const Record& r, const std::string& file, Series& s, Reporter& report) {
    const auto start = time_at(r, {"effective_time_frame.time_interval.start_date_time"});
    const auto end = time_at(r, {"effective_time_frame.time_interval.end_date_time"});
    if (!start || !end) {
      report(file, static_cast<long>(r.index), "no readable effective_time_frame.time_interval");
      return;
    }
    if (*end <= *start || *end - *start > 3600) {
      report(file, static_cast<long>(r.index),
             fmt::format("activity interval of {} s (expected 0 < length <= 1 h); left out", *end - *start));
      return;
    }
    const Leaf* v = r.find("base_movement_quantity.value");
    const auto number = number_of(v);
    double value = std::nan("");
    if (number && *number >= 0) {
      value = *number;
    } else if (v && v->kind == Leaf::Kind::kString && trim(v->text).empty()) {
      // "": Garmin's unknown activity type; covers no known steps.
    } else {
      report(file, static_cast<long>(r.index),
             fmt::format("base_movement_quantity.value is {}: expected a step count or \"\"", describe(v)));
      return;
    }
    s.steps.push_back({*start, *end, value, *end - *start});
  }

  UsZone zone_of(const Series& s, Reporter& report) {
    std::optional<UsZone> zone;
    for (const auto& name : s.zones) {
      const auto z = parse_us_zone(name);
      if (!z) {
        report("", -1, fmt::format("header timezone \"{}\" is not a US zone (pst, mst, cst, est); ignored", name));
        continue;
      }
      if (!zone) {
        zone = z;
      } else if (*zone != *z) {
        report("", -1, fmt::format("files name different time zones ({} and {}); {} is used", zone_name(*zone),
                                   zone_name(*z), zone_name(*zone)));
      }
    }
    if (zone) return *zone;
    if (!p_.id.empty() && (p_.id[0] == '1' || p_.id[0] == '4') && p_.id.size() == 4) return UsZone::kPacific;
    if (!p_.id.empty() && p_.id[0] == '7' && p_.id.size() == 4) return UsZone::kCentral;
    const std::string site = to_lower(p_.site);
    if (site == "uw" || site == "ucsd") return UsZone::kPacific;
    if (site == "uab") return UsZone::kCentral;
    report("participants.tsv", -1,
           fmt::format("line {}: no time zone (no header timezone, id {} not 1xxx/4xxx/7xxx, clinical_site '{}'); "
                       "Pacific assumed",
                       p_.line, p_.id, p_.site));
    return UsZone::kPacific;
  }

  static void to_local(UsZone zone, Series& s) {
    for (auto& r : s.cgm) r.t = sensecf::to_local(zone, r.t);
    for (auto& r : s.stress) r.t = sensecf::to_local(zone, r.t);
    for (auto& r : s.sleep) {
      r.start = sensecf::to_local(zone, r.start);
      r.end = sensecf::to_local(zone, r.end);
    }
    for (auto& r : s.steps) {
      r.start = sensecf::to_local(zone, r.start);
      r.end = sensecf::to_local(zone, r.end);
    }
    auto by_t = [](const Reading& a, const Reading& b) { return a.t < b.t; };
    std::stable_sort(s.cgm.begin(), s.cgm.end(), by_t);
    std::stable_sort(s.stress.begin(), s.stress.end(), by_t);
    std::stable_sort(s.steps.begin(), s.steps.end(), [](const Interval& a, const Interval& b) { return a.end < b.end; });
  }

  void windows(const Series& s, UsZone zone, double age, const std::string& medication, ParticipantOutput& out) {
    // Nights: date D -> stage seconds of the sleep starting in [noon D-1, noon D).
    std::map<std::int64_t, std::array<std::int64_t, kNumStages>> nights;
    for (const auto& r : s.sleep) {
      const std::int64_t night = floor_div(r.start - 12 * 3600, 86400) + 1;
      nights[night][static_cast<std::size_t>(r.value)] += r.seconds;
    }
    std::set<std::int64_t> days;
    for (const auto& r : s.cgm) days.insert(floor_div(r.t, 86400));

    const int run_needed = std::max(1, static_cast<int>(std::ceil(o_.hyper_minutes / 5.0 - 1e-9)));
    const double medication_code =
        static_cast<double>(std::find(categories_of("medication").begin(), categories_of("medication").end(), medication) -
                            categories_of("medication").begin());
    const double subgroup_code = static_cast<double>(
        std::find(categories_of("subgroup").begin(), categories_of("subgroup").end(), p_.study_group) -
        categories_of("subgroup").begin());

    auto first_at = [](const std::vector<Reading>& v, std::int64_t t) {
      return std::lower_bound(v.begin(), v.end(), t, [](const Reading& r, std::int64_t x) { return r.t < x; });
    };
    for (const std::int64_t day : days) {
      for (int hour = o_.first_hour; hour <= o_.last_hour; ++hour) {
        const std::int64_t start = day * 86400 + hour * 3600, end = start + 7200;
        ++out.candidates;
        // CGM
        int n = 0, in_range = 0, hyper = 0, run = 0;
        double sum = 0;
        std::int64_t previous = 0;
        for (auto it = first_at(s.cgm, start); it != s.cgm.end() && it->t < end; ++it) {
          ++n;
          sum += it->value;
          if (it->value >= 70.0 && it->value <= 180.0) ++in_range;
          if (it->value > o_.hyper_threshold) {
            run = (run > 0 && it->t - previous <= 450) ? run + 1 : 1;
            if (run == run_needed) ++hyper;
          } else {
            run = 0;
          }
          previous = it->t;
        }
        // Stress
        int valid = 0;
        double stress_sum = 0;
        for (auto it = first_at(s.stress, start); it != s.stress.end() && it->t < end; ++it) {
          if (it->value < 0) continue;
          ++valid;
          stress_sum += it->value;
        }
        // Steps: records ending in (start, end].
        double steps = 0;
        std::int64_t covered = 0;
        auto it = std::upper_bound(s.steps.begin(), s.steps.end(), start,
                                   [](std::int64_t x, const Interval& r) { return x < r.end; });
        for (; it != s.steps.end() && it->end <= end; ++it) {
          if (std::isnan(it->value)) continue;
          steps += it->value;
          covered += it->seconds;
        }
        // The night before.
        std::array<std::int64_t, kNumStages> night{};
        if (const auto nt = nights.find(day); nt != nights.end()) night = nt->second;
        std::int64_t slept = 0;
        for (auto v : night) slept += v;

        const char* reason = nullptr;
        if (n < o_.min_cgm_readings) {
          reason = "cgm";
        } else if (valid < o_.min_stress_readings) {
          reason = "stress";
        } else if (covered == 0 || static_cast<double>(covered) < o_.min_activity_minutes * 60.0) {
          reason = "steps";
        } else if (slept == 0 || static_cast<double>(slept) < o_.min_sleep_minutes * 60.0) {
          reason = "sleep";
        }
        if (reason) {
          ++out.dropped[reason];
          continue;
        }
        std::array<double, kNumCols> row{};
        for (int k = 0; k < kNumStages; ++k) {
          row[kCAwake + static_cast<std::size_t>(k)] = round_to(100.0 * static_cast<double>(night[static_cast<std::size_t>(k)]) / static_cast<double>(slept), 100);
        }
        row[kCSteps] = round_to(steps / (static_cast<double>(covered) / 60.0), 100);
        row[kCGlucose] = round_to(sum / n, 10);
        row[kCHyper] = hyper;
        row[kCTir] = round_to(100.0 * in_range / n, 100);
        row[kCAge] = age;
        row[kCMedication] = medication_code;
        row[kCSubgroup] = subgroup_code;
        out.rows.push_back(row);
        out.labels.push_back(stress_sum / valid > o_.stress_threshold ? 1 : 0);
        WindowInfo w;
        w.participant = p_.id;
        w.local_start = start;
        w.utc_offset = utc_offset(zone, from_local(zone, start));
        w.cgm_readings = n;
        w.stress_readings = valid;
        w.activity_minutes = static_cast<double>(covered) / 60.0;
        w.split = p_.split;
        out.windows.push_back(std::move(w));
      }
    }
  }

  const IngestOptions& o_;
  const std::string& root_;
  const ParticipantInfo& p_;
  const Manifest& cgm_manifest_;
  const Manifest& garmin_manifest_;
  const std::map<std::string, std::string>& demographics_;
};

std::map<std::string, std::string> read_demographics(const std::string& path) {
  std::map<std::string, std::string> out;
  if (path.empty()) return out;
  const Tsv t = read_tsv(path);
  const long id = id_column(t, path);
  const long g = gender_column(t);
  if (g < 0) {
    throw UsageError(
        fmt::format("{} (ingest.demographics): no sex or gender column; the header is: {}", path,
                    join(t.header, ", ")),
        "pass a demographics TSV with a sex or gender column, or leave ingest.demographics empty for a "
        "placeholder");
  }
  for (const auto& row : t.rows) {
    const std::string v = to_lower(cell(row, g));
    if (!v.empty()) out[cell(row, id)] = v;
  }
  return out;
}

// One participant's output as a result of its own (its gender its only
// category); merge_results joins them, as it joins shards.
IngestResult to_result(ParticipantOutput&& o, const std::string& dataset_root) {
  IngestResult r;
  r.dataset_root = dataset_root;
  r.features.schema = data::cohort_schema({o.gender.empty() ? std::string(kGenderNotProvided) : o.gender});
  r.features.x = data::Matrix(o.rows.size(), kNumCols);
  for (std::size_t i = 0; i < o.rows.size(); ++i) {
    std::copy(o.rows[i].begin(), o.rows[i].end(), r.features.x.row(i));
    r.features.x.at(i, kCGender) = 0;
  }
  r.features.y = std::move(o.labels);
  r.features.group.assign(o.rows.size(), o.summary.id);
  r.windows = std::move(o.windows);
  r.records = o.summary.records;
  r.bytes = o.summary.bytes;
  r.problems = std::move(o.problems);
  r.problem_count = o.problem_count;
  r.dropped = std::move(o.dropped);
  r.candidate_windows = o.candidates;
  r.participants.push_back(std::move(o.summary));
  return r;
}

}  // namespace

IngestResult ingest_aireadi(const IngestOptions& options, const std::vector<std::string>& only) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string root = find_dataset_root(options.root);
  std::vector<ParticipantInfo> participants = read_participants(root);
  if (!only.empty()) {
    const std::set<std::string> wanted(only.begin(), only.end());
    std::vector<ParticipantInfo> kept;
    for (auto& p : participants)
      if (wanted.count(p.id)) kept.push_back(std::move(p));
    participants = std::move(kept);
  }
  const Manifest cgm_manifest =
      read_manifest((fs::path(root) / "wearable_blood_glucose" / "manifest.tsv").string(), {"glucose_filepath"});
  const Manifest garmin_manifest =
      read_manifest((fs::path(root) / "wearable_activity_monitor" / "manifest.tsv").string(),
                    {"sleep_filepath", "stress_level_filepath", "physical_activity_filepath"});
  const auto demographics = read_demographics(options.demographics);

  std::vector<ParticipantOutput> outs(participants.size());
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    while (!failed) {
      const std::size_t i = next++;
      if (i >= participants.size()) return;
      try {
        outs[i] = ParticipantReader(options, root, participants[i], cgm_manifest, garmin_manifest, demographics).run();
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t n_threads = std::min<std::size_t>(
      participants.size(), options.threads > 0 ? static_cast<std::size_t>(options.threads) : cores);
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);

  std::vector<IngestResult> parts;
  parts.reserve(outs.size());
  for (auto& o : outs) parts.push_back(to_result(std::move(o), root));
  IngestResult result = merge_results(std::move(parts));
  result.dataset_root = result.features.source = root;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

IngestResult merge_results(std::vector<IngestResult> parts) {
  IngestResult result;
  if (!parts.empty()) result.dataset_root = parts[0].dataset_root;
  std::set<std::string> gender_set;
  for (const auto& p : parts) {
    const auto& cats = p.features.schema.features.at(kCGender).categories;
    if (p.features.size() > 0) gender_set.insert(cats.begin(), cats.end());
  }
  result.gender_provided = !gender_set.empty() && !gender_set.count(kGenderNotProvided);
  if (gender_set.empty()) gender_set.insert(kGenderNotProvided);
  const std::vector<std::string> genders(gender_set.begin(), gender_set.end());
  std::size_t n = 0;
  for (const auto& p : parts) n += p.features.size();
  result.features.schema = data::cohort_schema(genders);
  result.features.source = result.dataset_root;
  result.features.x = data::Matrix(n, kNumCols);
  std::size_t r = 0;
  for (auto& p : parts) {
    const auto& cats = p.features.schema.features.at(kCGender).categories;
    for (std::size_t i = 0; i < p.features.size(); ++i, ++r) {
      std::copy(p.features.x.row(i), p.features.x.row(i) + kNumCols, result.features.x.row(r));
      const auto& g = cats.at(static_cast<std::size_t>(p.features.x.at(i, kCGender)));
      result.features.x.at(r, kCGender) =
          static_cast<double>(std::find(genders.begin(), genders.end(), g) - genders.begin());
      result.features.y.push_back(p.features.y[i]);
      result.features.group.push_back(p.features.group[i]);
    }
    for (auto& w : p.windows) result.windows.push_back(std::move(w));
    for (auto& s : p.participants) result.participants.push_back(std::move(s));
    for (auto& pr : p.problems)
      if (result.problems.size() < kMaxListedProblems) result.problems.push_back(std::move(pr));
    result.problem_count += p.problem_count;
    for (const auto& [reason, count] : p.dropped) result.dropped[reason] += count;
    result.candidate_windows += p.candidate_windows;
    result.records += p.records;
    result.bytes += p.bytes;
    result.seconds += p.seconds;
  }
  if (n > 0) {
    std::vector<std::size_t> all(n);
    for (std::size_t i = 0; i < n; ++i) all[i] = i;
    result.features.schema.learn_bounds(result.features.x, all);
  }
  return result;
}

// ---------------------------------------------------------------------------
// Outputs.

namespace {

std::string stem_of(const std::string& out) {
  fs::path p(out);
  return (p.parent_path() / p.stem()).string();
}

// One participant's counts, in the .ingest.json summary and in a shard.
nlohmann::json summary_json(const ParticipantSummary& p) {
  return {{"id", p.id},           {"zone", p.zone},   {"windows", p.windows},  {"dropped", p.dropped},
          {"records", p.records}, {"bytes", p.bytes}, {"problems", p.problems}};
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw Error("cannot write " + tmp, "check that the folder exists and is writable");
    f << text;
    if (!f.flush()) throw Error("cannot write " + tmp + " (disk full?)", "free some space and run again");
  }
  fs::rename(tmp, path);
}

}  // namespace

std::string windows_path(const std::string& out) { return stem_of(out) + ".windows.csv"; }
std::string summary_path(const std::string& out) { return stem_of(out) + ".ingest.json"; }

void write_ingest_outputs(const IngestResult& result, const IngestOptions& options, const std::string& out) {
  if (result.features.size() == 0) {
    throw Error(fmt::format("AI-READI ingest of {}: no window kept ({} candidates; dropped: {}; {} problems)",
                            result.dataset_root, result.candidate_windows,
                            nlohmann::json(result.dropped).dump(), result.problem_count),
                "see the problems above; the ingest.min_* options set how much data a window needs");
  }
  if (!fs::path(out).parent_path().empty()) fs::create_directories(fs::path(out).parent_path());
  data::write_csv(result.features, out + ".tmp");
  fs::rename(out + ".tmp", out);

  std::string w = "participant_id,start,utc_offset,cgm_readings,stress_readings,activity_minutes,recommended_split\n";
  for (const auto& x : result.windows) {
    w += fmt::format("{},{},{:+03d}:{:02d},{},{},{},{}\n", csv_field(x.participant), format_minutes(x.local_start),
                     x.utc_offset / 3600, std::abs(x.utc_offset) / 60 % 60, x.cgm_readings, x.stress_readings,
                     x.activity_minutes, csv_field(x.split));
  }
  write_atomically(windows_path(out), w);

  nlohmann::json j;
  j["dataset_root"] = result.dataset_root;
  j["rows"] = result.features.size();
  j["positive"] = result.features.count_label(1);
  j["candidate_windows"] = result.candidate_windows;
  j["dropped"] = result.dropped;
  j["gender_provided"] = result.gender_provided;
  j["records"] = result.records;
  j["bytes"] = result.bytes;
  j["seconds"] = result.seconds;
  j["options"] = {{"first_hour", options.first_hour},
                  {"last_hour", options.last_hour},
                  {"cgm_low", options.cgm_low},
                  {"cgm_high", options.cgm_high},
                  {"hyper_threshold", options.hyper_threshold},
                  {"hyper_minutes", options.hyper_minutes},
                  {"stress_threshold", options.stress_threshold},
                  {"min_cgm_readings", options.min_cgm_readings},
                  {"min_stress_readings", options.min_stress_readings},
                  {"min_activity_minutes", options.min_activity_minutes},
                  {"min_sleep_minutes", options.min_sleep_minutes}};
  auto& participants = j["participants"] = nlohmann::json::array();
  for (const auto& p : result.participants) {
    participants.push_back(summary_json(p));
  }
  j["problem_count"] = result.problem_count;
  auto& problems = j["problems"] = nlohmann::json::array();
  for (const auto& p : result.problems) {
    problems.push_back({{"participant", p.participant}, {"file", p.file}, {"record", p.record}, {"what", p.what}});
  }
  write_atomically(summary_path(out), j.dump(1) + "\n");
}

std::string release_fingerprint(const IngestOptions& o) {
  const std::string root = find_dataset_root(o.root);
  std::string text = fmt::format("aireadi-ingest 1\n{} {} {} {} {} {} {} {} {} {} {}\n", o.first_hour, o.last_hour,
                                 o.cgm_low, o.cgm_high, o.hyper_threshold, o.hyper_minutes, o.stress_threshold,
                                 o.min_cgm_readings, o.min_stress_readings, o.min_activity_minutes,
                                 o.min_sleep_minutes);
  auto add_bytes = [&](const fs::path& p) {
    if (fs::exists(p)) text += p.filename().string() + " " + fnv1a_file_hex(p.string()) + "\n";
  };
  add_bytes(fs::path(root) / "participants.tsv");
  add_bytes(fs::path(root) / "wearable_blood_glucose" / "manifest.tsv");
  add_bytes(fs::path(root) / kGarminDir / "manifest.tsv");
  if (!o.demographics.empty()) add_bytes(o.demographics);
  // Every file under the folders ingest reads, in path order.
  std::vector<std::string> entries;
  for (const char* dir : {"wearable_blood_glucose/continuous_glucose_monitoring", "wearable_activity_monitor/sleep",
                          "wearable_activity_monitor/stress", "wearable_activity_monitor/physical_activity"}) {
    const fs::path base = fs::path(root) / dir;
    if (!fs::exists(base)) continue;
    for (const auto& e : fs::recursive_directory_iterator(base)) {
      if (!e.is_regular_file()) continue;
      const auto mtime = e.last_write_time().time_since_epoch().count();
      entries.push_back(fmt::format("{} {} {}", fs::relative(e.path(), root).string(), e.file_size(), mtime));
    }
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& e : entries) text += e + "\n";
  return fnv1a_hex(text);
}

void save_result(const IngestResult& r, const std::string& path) {
  nlohmann::json j;
  j["dataset_root"] = r.dataset_root;
  j["genders"] = r.features.schema.features.at(kCGender).categories;
  j["x"] = r.features.x.values;
  j["y"] = r.features.y;
  j["group"] = r.features.group;
  auto& windows = j["windows"] = nlohmann::json::array();
  for (const auto& w : r.windows) {
    windows.push_back({w.participant, w.local_start, w.utc_offset, w.cgm_readings, w.stress_readings,
                       w.activity_minutes, w.split});
  }
  auto& participants = j["participants"] = nlohmann::json::array();
  for (const auto& p : r.participants) {
    participants.push_back(summary_json(p));
  }
  auto& problems = j["problems"] = nlohmann::json::array();
  for (const auto& p : r.problems) problems.push_back({p.participant, p.file, p.record, p.what});
  j["problem_count"] = r.problem_count;
  j["dropped"] = r.dropped;
  j["candidate_windows"] = r.candidate_windows;
  j["records"] = r.records;
  j["bytes"] = r.bytes;
  j["seconds"] = r.seconds;
  write_atomically(path, j.dump());
}

IngestResult load_result(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open " + path, "the ingest task that writes it has to run first");
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    IngestResult r;
    r.dataset_root = j.at("dataset_root").get<std::string>();
    const auto genders = j.at("genders").get<std::vector<std::string>>();
    r.features.schema = data::cohort_schema(genders);
    r.features.x.values = j.at("x").get<std::vector<double>>();
    r.features.x.n_cols = kNumCols;
    r.features.x.n_rows = r.features.x.values.size() / kNumCols;
    r.features.y = j.at("y").get<std::vector<int>>();
    r.features.group = j.at("group").get<std::vector<std::string>>();
    r.features.source = r.dataset_root;
    for (const auto& w : j.at("windows")) {
      r.windows.push_back({w.at(0).get<std::string>(), w.at(1).get<std::int64_t>(), w.at(2).get<int>(),
                           w.at(3).get<int>(), w.at(4).get<int>(), w.at(5).get<double>(), w.at(6).get<std::string>()});
    }
    for (const auto& p : j.at("participants")) {
      ParticipantSummary s;
      s.id = p.at("id");
      s.zone = p.at("zone");
      s.windows = p.at("windows");
      s.dropped = p.at("dropped").get<std::map<std::string, std::size_t>>();
      s.records = p.at("records");
      s.bytes = p.at("bytes");
      s.problems = p.at("problems");
      r.participants.push_back(std::move(s));
    }
    for (const auto& p : j.at("problems")) {
      r.problems.push_back({p.at(0).get<std::string>(), p.at(1).get<std::string>(), p.at(2).get<long>(),
                            p.at(3).get<std::string>()});
    }
    r.problem_count = j.at("problem_count");
    r.dropped = j.at("dropped").get<std::map<std::string, std::size_t>>();
    r.candidate_windows = j.at("candidate_windows");
    r.records = j.at("records");
    r.bytes = j.at("bytes");
    r.seconds = j.at("seconds");
    r.gender_provided = !genders.empty() && std::find(genders.begin(), genders.end(), kGenderNotProvided) == genders.end();
    if (r.features.y.size() != r.features.x.n_rows || r.features.group.size() != r.features.x.n_rows ||
        r.windows.size() != r.features.x.n_rows) {
      throw Error(
          fmt::format("{}: {} rows of features, {} labels, {} groups, {} windows", path, r.features.x.n_rows,
                      r.features.y.size(), r.features.group.size(), r.windows.size()),
          "the shard is damaged; delete the task's folder so that it runs again");
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{} is not an ingest shard: {}", path, e.what()),
                "delete the task's folder so that it runs again");
  }
}

bool table_has_gender(const std::string& features_csv) {
  std::ifstream in(summary_path(features_csv));
  if (!in) return false;
  try {
    return nlohmann::json::parse(in).value("gender_provided", false);
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

std::map<std::string, std::string> read_recommended_splits(const std::string& features_csv) {
  const std::string path = windows_path(features_csv);
  std::ifstream in(path);
  if (!in) {
    throw UsageError("data.split = recommended needs " + path + " (written by `sensecf ingest` beside " +
                         features_csv + ")",
                     "ingest the release again, or use data.split = random");
  }
  // The file is written with csv_field (ids with a comma are quoted): read it
  // with the CSV reader's splitter.
  std::string line;
  long line_no = 1;
  std::getline(in, line);
  std::vector<std::string> header;
  for (const auto& c : data::split_csv_line(line, path, line_no)) header.push_back(c.text);
  const auto id = std::find(header.begin(), header.end(), "participant_id") - header.begin();
  const auto split = std::find(header.begin(), header.end(), "recommended_split") - header.begin();
  if (static_cast<std::size_t>(id) == header.size() || static_cast<std::size_t>(split) == header.size()) {
    throw Error(path + ": no participant_id and recommended_split columns",
                "ingest the release again, or use data.split = random");
  }
  std::map<std::string, std::string> out;
  while (std::getline(in, line)) {
    const auto cells = data::split_csv_line(line, path, ++line_no);
    if (cells.size() == header.size())
      out[cells[static_cast<std::size_t>(id)].text] = cells[static_cast<std::size_t>(split)].text;
  }
  return out;
}

std::vector<std::string> summary_lines(const IngestResult& r) {
  std::vector<std::string> lines;
  std::size_t with_rows = 0;
  for (const auto& p : r.participants) with_rows += p.windows > 0;
  lines.push_back(fmt::format("{} windows of {} participants ({} with at least one window), {} positive ({:.1f}%); "
                              "{} records, {:.1f} MB in {:.1f} s",
                              r.features.size(), r.participants.size(), with_rows, r.features.count_label(1),
                              r.features.size() ? 100.0 * static_cast<double>(r.features.count_label(1)) /
                                                      static_cast<double>(r.features.size())
                                                : 0.0,
                              r.records, static_cast<double>(r.bytes) / 1e6, r.seconds));
  std::vector<std::string> reasons;
  for (const auto& [reason, count] : r.dropped) reasons.push_back(fmt::format("{} {}", count, reason));
  lines.push_back(fmt::format("dropped {} of {} candidate windows: {}", r.candidate_windows - r.features.size(),
                              r.candidate_windows, reasons.empty() ? std::string("none") : join(reasons, ", ")));
  if (!r.gender_provided) {
    lines.push_back(fmt::format("gender: not in the public files; written as '{}' (read the table with "
                                "--data.drop gender, or give ingest.demographics)",
                                kGenderNotProvided));
  }
  if (r.problem_count) {
    lines.push_back(fmt::format("{} problems in the files (listed above; all counted in the .ingest.json file)", r.problem_count));
  }
  return lines;
}

}  // namespace sensecf::ingest
