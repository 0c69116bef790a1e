// AI-READI ingest on hand-built releases whose features are worked out by hand
// (docs/aireadi.md): one window's glucose, time in range, hyperglycaemic
// event, stress label, steps and the night before; every format variant
// (v1 bare CGM list, v2, v3 nesting and timezone headers) and every quirk
// (Low/High, "" and "20" step values, -1 stress, unknown stages, a truncated
// file, a None manifest entry, a FALSE column, malformed records), each
// reported with participant id, file and record index; --strict stops at the
// first. Civil time is checked against the system's tzdata.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sensecf/core/civil_time.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/csv.h"
#include "sensecf/data/synth_raw.h"
#include "sensecf/ingest/aireadi.h"
#include "test_util.h"

namespace sensecf::ingest {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// --- civil time --------------------------------------------------------------

TEST(CivilTime, DaysRoundTripAndTimestampFormats) {
  for (std::int64_t d = -800000; d <= 800000; d += 37) {
    const auto c = civil_from_days(d);
    ASSERT_EQ(days_from_civil(c.year, c.month, c.day), d);
  }
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28), 2);  // leap year
  EXPECT_EQ(parse_utc_timestamp("2023-08-08T21:15:10Z"), 1691529310);
  EXPECT_EQ(parse_utc_timestamp("2023-08-08 21:15:10"), 1691529310);  // the pilot's activity format
  EXPECT_FALSE(parse_utc_timestamp("2023-02-30T00:00:00Z"));
  EXPECT_FALSE(parse_utc_timestamp("2023-08-08T21:15Z"));
  EXPECT_FALSE(parse_utc_timestamp("2023-08-08T25:15:10Z"));
  EXPECT_FALSE(parse_utc_timestamp(""));
  EXPECT_EQ(format_utc_timestamp(1691529310), "2023-08-08T21:15:10Z");
  EXPECT_EQ(parse_us_zone("PST"), UsZone::kPacific);
  EXPECT_EQ(parse_us_zone("cst"), UsZone::kCentral);
  EXPECT_FALSE(parse_us_zone("utc"));
}

// Every hour of 2019-2027 in the four zones, against the C library and the
// system's tzdata (an independent implementation of the same rule).
TEST(CivilTime, UtcOffsetsMatchTzdata) {
  const std::pair<UsZone, const char*> zones[] = {{UsZone::kPacific, "America/Los_Angeles"},
                                                  {UsZone::kMountain, "America/Denver"},
                                                  {UsZone::kCentral, "America/Chicago"},
                                                  {UsZone::kEastern, "America/New_York"}};
  if (!fs::exists("/usr/share/zoneinfo/America/Chicago")) GTEST_SKIP() << "no tzdata on this machine";
  const char* old = std::getenv("TZ");
  const std::string saved = old ? old : "";
  for (const auto& [zone, name] : zones) {
    setenv("TZ", name, 1);
    tzset();
    const std::int64_t from = *parse_utc_timestamp("2019-01-01T00:00:00Z");
    const std::int64_t to = *parse_utc_timestamp("2027-12-31T00:00:00Z");
    for (std::int64_t t = from; t < to; t += 1800) {
      const std::time_t tt = static_cast<std::time_t>(t);
      std::tm tm{};
      localtime_r(&tt, &tm);
      ASSERT_EQ(utc_offset(zone, t), tm.tm_gmtoff) << name << " at " << format_utc_timestamp(t);
      ASSERT_EQ(from_local(zone, to_local(zone, t)) == t || tm.tm_isdst == 0, true)
          << name << ": local -> UTC at " << format_utc_timestamp(t);
    }
  }
  if (old) setenv("TZ", saved.c_str(), 1); else unsetenv("TZ");
  tzset();
}

// --- a hand-built release ---------------------------------------------------

constexpr const char* kCgmDir = "wearable_blood_glucose/continuous_glucose_monitoring/dexcom_g6";

std::string utc(std::int64_t t) { return format_utc_timestamp(t); }

struct Release {
  test::TempDir dir;
  std::string format = "v2";     // v1 | v2 | v3
  std::string root() const { return format == "v3" ? (dir.path() / "0a1b-uuid" / "dataset").string() : dir.path().string(); }

  void write(const std::string& rel, const std::string& text) const {
    const fs::path p = fs::path(root()) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
  }
  std::string garmin(const std::string& id, const char* folder, const char* suffix) const {
    return std::string("wearable_activity_monitor/") + folder + "/garmin_vivosmart5/" + id + "/" + id + "_" + suffix +
           ".json";
  }
  json header(const std::string& id, const char* zone) const {
    json h = {{"uuid", "AIREADI-" + id}, {"user_id", "AIREADI-" + id}};
    if (format == "v3") h["timezone"] = zone;
    return h;
  }
};

// Local day D = 2024-01-10 (PST, UTC-8) and D+1: two days of data.
const std::int64_t kDay = days_from_civil(2024, 1, 10);

// Writes one participant with a full, clean record of two days, except for the
// window 08:00-10:00 of day D, which carries the hand-checked pattern.
void write_participant(const Release& r, const std::string& id, const char* zone_name, UsZone zone,
                       int deep_minutes = 60) {
  auto at = [&](std::int64_t day, int minute_of_day) {
    return from_local(zone, day * 86400 + static_cast<std::int64_t>(minute_of_day) * 60);
  };
  // CGM every 5 min, on the 5-minute marks.
  json cgm = json::array();
  for (std::int64_t day = kDay; day <= kDay + 1; ++day) {
    for (int m = 0; m < 24 * 60; m += 5) {
      json value = 100;
      if (day == kDay && m >= 8 * 60 && m < 8 * 60 + 20) value = 200;  // 4 readings above 180: one event
      if (day == kDay && m == 14 * 60) value = "Low";                    // 40 in window 13-15 and 14-16
      if (day == kDay && m == 15 * 60) value = "High";                   // 400 in window 14-16 and 15-17
      const std::string t = utc(at(day, m));
      cgm.push_back({{"effective_time_frame", {{"time_interval", {{"start_date_time", t}, {"end_date_time", t}}}}},
                     {"event_type", "EGV"},
                     {"blood_glucose", {{"unit", "mg/dL"}, {"value", value}}}});
    }
  }
  json cgm_file = {{"header", r.header(id, zone_name)}};
  if (r.format == "v1") {
    cgm_file["body"] = cgm;
  } else {
    cgm_file["body"] = {{"cgm", cgm}};
  }
  r.write(std::string(kCgmDir) + "/" + id + "/" + id + "_DEX.json", cgm_file.dump());

  // Stress every 2 min: 80 in 08:00-10:00 of day D, else 20; every 10th a -1.
  json stress = json::array();
  for (std::int64_t day = kDay; day <= kDay + 1; ++day) {
    for (int m = 0; m < 24 * 60; m += 2) {
      int v = (day == kDay && m >= 8 * 60 && m < 10 * 60) ? 80 : 20;
      if ((m / 2) % 10 == 9) v = -1;
      stress.push_back({{"stress", {{"value", v}, {"unit", "stress level"}}},
                        {"effective_time_frame", {{"date_time", utc(at(day, m))}}}});
    }
  }
  r.write(r.garmin(id, "stress", "stress"), json({{"header", r.header(id, zone_name)}, {"body", {{"stress", stress}}}}).dump());

  // Steps: one record per minute, (t - 60 s, t], 10 steps; in day D the record
  // ending 08:01 has "" (unknown type) and the one ending 08:02 the string "20".
  json steps = json::array();
  for (std::int64_t day = kDay; day <= kDay + 1; ++day) {
    for (int m = 1; m <= 24 * 60; ++m) {
      json v = 10;
      std::string name = "walking";
      if (day == kDay && m == 8 * 60 + 1) v = "", name = "";
      if (day == kDay && m == 8 * 60 + 2) v = "20";
      steps.push_back({{"activity_name", name},
                       {"base_movement_quantity", {{"value", v}, {"unit", "steps"}}},
                       {"effective_time_frame",
                        {{"time_interval", {{"start_date_time", utc(at(day, m - 1))}, {"end_date_time", utc(at(day, m))}}}}}});
    }
  }
  r.write(r.garmin(id, "physical_activity", "activity"),
          json({{"header", r.header(id, zone_name)}, {"body", {{"activity", steps}}}}).dump());

  // Sleep before D and before D+1, from 23:00: light 3 h, deep 1 h, rem 1.5 h,
  // unknown 15 min, awake 30 min: 6 h of the four stages.
  const char* key = r.format == "v3" ? "effective_time_frame" : "sleep_stage_time_frame";
  json sleep = json::array();
  for (std::int64_t day = kDay; day <= kDay + 1; ++day) {
    std::int64_t t = at(day - 1, 23 * 60);
    for (auto [stage, minutes] : std::vector<std::pair<const char*, int>>{
             {"light", 180}, {"deep", deep_minutes}, {"rem", 90}, {"unknown", 15}, {"awake", 30}}) {
      sleep.push_back({{"sleep_stage_state", stage},
                       {key, {{"time_interval", {{"start_date_time", utc(t)}, {"end_date_time", utc(t + minutes * 60)}}}}}});
      t += minutes * 60;
    }
  }
  r.write(r.garmin(id, "sleep", "sleep"), json({{"header", r.header(id, zone_name)}, {"body", {{"sleep", sleep}}}}).dump());
}

void write_participants(const Release& r, const std::vector<std::vector<std::string>>& rows) {
  std::string text = std::string(r.format == "v3" ? "person_id" : "participant_id") +
                     "\tclinical_site\tstudy_group\tage\tstudy_visit_date\trecommended_split\twearable_activity_monitor"
                     "\twearable_blood_glucose\n";
  for (const auto& row : rows) text += join(row, "\t") + "\n";
  r.write("participants.tsv", text);
}

IngestOptions options_for(const Release& r) {
  IngestOptions o;
  o.root = r.dir.path().string();
  o.threads = 2;
  return o;
}

std::size_t row_of(const IngestResult& res, const std::string& id, std::int64_t local_start) {
  for (std::size_t i = 0; i < res.windows.size(); ++i)
    if (res.windows[i].participant == id && res.windows[i].local_start == local_start) return i;
  ADD_FAILURE() << "no window of " << id << " at " << format_minutes(local_start);
  return 0;
}

double value(const IngestResult& res, std::size_t row, const char* feature) {
  return res.features.x.at(row, res.features.schema.index_of(feature));
}

class IngestFormats : public ::testing::TestWithParam<std::string> {};

TEST_P(IngestFormats, RecoversHandCheckedWindows) {
  Release r;
  r.format = GetParam();
  write_participants(r, {{"1001", "UW", "insulin_dependent", "63", "2024-01-09", "train", "TRUE", "TRUE"}});
  write_participant(r, "1001", "pst", UsZone::kPacific);
  const IngestResult res = ingest_aireadi(options_for(r));
  for (const auto& p : res.problems) ADD_FAILURE() << p.str();
  ASSERT_EQ(res.features.size(), 24u);  // 2 days x 12 windows, none dropped
  EXPECT_EQ(res.candidate_windows, 24u);

  const std::size_t w8 = row_of(res, "1001", kDay * 86400 + 8 * 3600);
  EXPECT_DOUBLE_EQ(value(res, w8, "glucose_mean"), 116.7);  // (4 x 200 + 20 x 100) / 24 = 116.67
  EXPECT_DOUBLE_EQ(value(res, w8, "tir_pct"), 83.33);       // 20 of 24
  EXPECT_DOUBLE_EQ(value(res, w8, "hyper_events"), 1);      // 4 readings (20 min) above 180
  EXPECT_EQ(res.features.y[w8], 1);                         // stress 80 > 75 (the -1s left out)
  EXPECT_DOUBLE_EQ(value(res, w8, "steps_mean"), 10.08);    // (118 x 10 + 20) / 119 min ("" left out)
  EXPECT_DOUBLE_EQ(value(res, w8, "light_pct"), 50);        // 180 of 360 min
  EXPECT_DOUBLE_EQ(value(res, w8, "deep_pct"), 16.67);
  EXPECT_DOUBLE_EQ(value(res, w8, "rem_pct"), 25);
  EXPECT_DOUBLE_EQ(value(res, w8, "awake_pct"), 8.33);
  EXPECT_DOUBLE_EQ(value(res, w8, "age"), 63);
  EXPECT_EQ(res.windows[w8].cgm_readings, 24);
  EXPECT_EQ(res.windows[w8].stress_readings, 54);  // 60 minus 6 invalid
  EXPECT_EQ(res.windows[w8].utc_offset, -8 * 3600);
  EXPECT_EQ(res.windows[w8].split, "train");

  const std::size_t w9 = row_of(res, "1001", kDay * 86400 + 9 * 3600);
  EXPECT_DOUBLE_EQ(value(res, w9, "glucose_mean"), 100);
  EXPECT_DOUBLE_EQ(value(res, w9, "hyper_events"), 0);
  EXPECT_EQ(res.features.y[w9], 0);  // (27 x 80 + 27 x 20) / 54 = 50
  EXPECT_DOUBLE_EQ(value(res, w9, "steps_mean"), 10);

  const std::size_t w14 = row_of(res, "1001", kDay * 86400 + 14 * 3600);
  EXPECT_DOUBLE_EQ(value(res, w14, "glucose_mean"), 110);  // (22 x 100 + 40 + 400) / 24
  EXPECT_DOUBLE_EQ(value(res, w14, "tir_pct"), 91.67);       // Low and High out of range
  EXPECT_DOUBLE_EQ(value(res, w14, "hyper_events"), 0);      // one reading above 180 is no event

  const auto& sub = res.features.schema.features[res.features.schema.index_of("subgroup")];
  EXPECT_EQ(sub.categories[static_cast<std::size_t>(value(res, w8, "subgroup"))], "insulin_dependent");
  const auto& med = res.features.schema.features[res.features.schema.index_of("medication")];
  EXPECT_EQ(med.categories[static_cast<std::size_t>(value(res, w8, "medication"))], "insulin");
  EXPECT_FALSE(res.gender_provided);
}

INSTANTIATE_TEST_SUITE_P(V1V2V3, IngestFormats, ::testing::Values("v1", "v2", "v3"));

TEST(Ingest, V3HeaderTimezoneWinsOverTheIdRule) {
  Release r;
  r.format = "v3";
  // 1002 would be Pacific by its id; its files say Central.
  write_participants(r, {{"1002", "UW", "healthy", "51", "2024-01-09", "test", "TRUE", "TRUE"}});
  write_participant(r, "1002", "cst", UsZone::kCentral);
  const IngestResult res = ingest_aireadi(options_for(r));
  ASSERT_EQ(res.features.size(), 24u);
  EXPECT_EQ(res.participants[0].zone, "Central");
  const std::size_t w8 = row_of(res, "1002", kDay * 86400 + 8 * 3600);
  EXPECT_DOUBLE_EQ(value(res, w8, "hyper_events"), 1);
  EXPECT_EQ(res.windows[w8].utc_offset, -6 * 3600);
}

TEST(Ingest, TruncatedCgmFileIsReportedByParticipantAndKeepsWhatCameBefore) {
  Release r;
  write_participants(r, {{"1001", "UW", "healthy", "51", "2024-01-09", "train", "TRUE", "TRUE"},
                         {"4002", "UCSD", "healthy", "47", "2024-01-09", "val", "TRUE", "TRUE"}});
  write_participant(r, "1001", "pst", UsZone::kPacific);
  write_participant(r, "4002", "pst", UsZone::kPacific);
  // Cut 4002's CGM file in the middle of day D+1.
  const fs::path cgm = fs::path(r.root()) / kCgmDir / "4002" / "4002_DEX.json";
  std::string text;
  {
    std::ifstream in(cgm, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(cgm, std::ios::binary | std::ios::trunc) << text.substr(0, text.size() * 3 / 4);

  const IngestResult res = ingest_aireadi(options_for(r));
  ASSERT_EQ(res.problem_count, 1u);
  const Problem& p = res.problems[0];
  EXPECT_EQ(p.participant, "4002");
  EXPECT_EQ(p.file, std::string(kCgmDir) + "/4002/4002_DEX.json");
  EXPECT_GT(p.record, 400);  // 3/4 of 576 readings
  EXPECT_LT(p.record, 576);
  EXPECT_NE(p.what.find("truncated"), std::string::npos) << p.what;
  EXPECT_NE(p.str().find("participant 4002"), std::string::npos);
  // 1001 complete; 4002 keeps day D and the windows of D+1 its readings still cover.
  EXPECT_EQ(res.participants[0].windows, 24u);
  EXPECT_GT(res.participants[1].windows, 12u);
  EXPECT_LT(res.participants[1].windows, 24u);
  EXPECT_GT(res.participants[1].dropped.at("cgm"), 0u);

  IngestOptions strict = options_for(r);
  strict.strict = true;
  EXPECT_THROW_WITH(ingest_aireadi(strict), Error, "participant 4002, " + std::string(kCgmDir) + "/4002/4002_DEX.json, record");
}

TEST(Ingest, MissingModalitiesAndMalformedRecordsAreReportedNotFatal) {
  Release r;
  write_participants(r, {{"1001", "UW", "healthy", "51", "2024-01-09", "train", "TRUE", "TRUE"},
                         {"1003", "UW", "healthy", "55", "2024-01-09", "train", "FALSE", "TRUE"},
                         {"1004", "UW", "healthy", "58", "2024-01-09", "train", "TRUE", "TRUE"},
                         {"1005", "UW", "gestational", "58", "2024-01-09", "train", "TRUE", "TRUE"},
                         {"1006", "UW", "healthy", "", "2024-01-09", "train", "TRUE", "TRUE"}});
  for (const char* id : {"1001", "1003", "1004", "1005", "1006"}) write_participant(r, id, "pst", UsZone::kPacific);
  // 1004's CGM is None in the manifest.
  r.write("wearable_blood_glucose/manifest.tsv",
          "participant_id\tglucose_filepath\tglucose_level_record_count\n"
          "1001\t/wearable_blood_glucose/continuous_glucose_monitoring/dexcom_g6/1001/1001_DEX.json\t576\n"
          "1004\tNone\t0\n");
  // Malformed records in 1001's stress, steps and sleep files.
  {
    const std::string f = r.garmin("1001", "stress", "stress");
    json j = json::parse(std::ifstream(fs::path(r.root()) / f));
    j["body"]["stress"][3]["stress"]["value"] = "abc";
    j["body"]["stress"][5].erase("effective_time_frame");
    r.write(f, j.dump());
  }
  {
    const std::string f = r.garmin("1001", "physical_activity", "activity");
    json j = json::parse(std::ifstream(fs::path(r.root()) / f));
    j["body"]["activity"][7]["base_movement_quantity"]["value"] = "many";
    r.write(f, j.dump());
  }
  {
    const std::string f = r.garmin("1001", "sleep", "sleep");
    json j = json::parse(std::ifstream(fs::path(r.root()) / f));
    j["body"]["sleep"][1]["sleep_stage_state"] = "nap";
    r.write(f, j.dump());
  }
  const IngestResult res = ingest_aireadi(options_for(r));
  std::vector<std::string> lines;
  for (const auto& p : res.problems) lines.push_back(p.str());
  const std::string all = join(lines, "\n");
  auto expect_line = [&](const std::string& text) {
    EXPECT_NE(all.find(text), std::string::npos) << "no problem saying\n  " << text << "\nin\n" << all;
  };
  expect_line("participant 1001, " + r.garmin("1001", "stress", "stress") + ", record 3: stress.value is \"abc\"");
  expect_line("participant 1001, " + r.garmin("1001", "stress", "stress") + ", record 5: no readable effective_time_frame.date_time");
  expect_line("participant 1001, " + r.garmin("1001", "physical_activity", "activity") +
              ", record 7: base_movement_quantity.value is \"many\"");
  expect_line("participant 1001, " + r.garmin("1001", "sleep", "sleep") + ", record 1: unknown sleep_stage_state \"nap\"");
  expect_line("participant 1003, participants.tsv: line 3: wearable_activity_monitor is FALSE");
  expect_line("participant 1004, wearable_blood_glucose/manifest.tsv: glucose_filepath is None");
  expect_line("participant 1005, participants.tsv: line 5: study_group 'gestational' is none of");
  expect_line("participant 1006, participants.tsv: line 6: age '' is not a number");
  EXPECT_EQ(res.problem_count, 8u);

  EXPECT_EQ(res.participants[0].windows, 24u - 0u);  // the deep sleep night lost 1 h but still > 180 min
  for (std::size_t i = 1; i < res.participants.size(); ++i) EXPECT_EQ(res.participants[i].windows, 0u) << res.participants[i].id;
  EXPECT_EQ(res.features.size(), 24u);
}

TEST(Ingest, OutputsReadBackWithTheDefaultDataOptionsAndGenderDropped) {
  Release r;
  write_participants(r, {{"1001", "UW", "healthy", "51", "2024-01-09", "train", "TRUE", "TRUE"},
                         {"7001", "UAB", "insulin_dependent", "66", "2024-01-09", "test", "TRUE", "TRUE"}});
  write_participant(r, "1001", "pst", UsZone::kPacific);
  write_participant(r, "7001", "cst", UsZone::kCentral, 75);  // the sleep columns must not be constant
  IngestOptions o = options_for(r);
  const IngestResult res = ingest_aireadi(o);
  const std::string out = r.dir.file("out/features.csv");
  write_ingest_outputs(res, o, out);
  data::DataOptions d;
  d.path = out;
  d.drop = {"gender"};
  const data::Dataset back = data::read_csv(d);
  ASSERT_EQ(back.size(), res.features.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back.group[i], res.features.group[i]);
    EXPECT_EQ(back.y[i], res.features.y[i]);
    EXPECT_DOUBLE_EQ(back.x.at(i, back.schema.index_of("glucose_mean")), value(res, i, "glucose_mean"));
  }
  const json summary = json::parse(std::ifstream(summary_path(out)));
  EXPECT_EQ(summary["rows"], 48);
  EXPECT_EQ(summary["participants"][1]["zone"], "Central");
  std::ifstream windows(windows_path(out));
  std::string header, first;
  std::getline(windows, header);
  std::getline(windows, first);
  EXPECT_EQ(header, "participant_id,start,utc_offset,cgm_readings,stress_readings,activity_minutes,recommended_split");
  EXPECT_EQ(first, "1001,2024-01-10T08:00,-08:00,24,54,119,train");

  // With a controlled-access demographics file the gender column is real.
  r.write("demo.tsv", "person_id\tsex\n1001\tFemale\n7001\tmale\n");
  o.demographics = (fs::path(r.root()) / "demo.tsv").string();
  const IngestResult with_gender = ingest_aireadi(o);
  EXPECT_TRUE(with_gender.gender_provided);
  const auto& g = with_gender.features.schema.features[with_gender.features.schema.index_of("gender")];
  EXPECT_EQ(g.categories, (std::vector<std::string>{"female", "male"}));
}

TEST(Ingest, MergingShardsEqualsOneRun) {
  Release r;
  write_participants(r, {{"1001", "UW", "healthy", "51", "2024-01-09", "train", "TRUE", "TRUE"},
                         {"4001", "UCSD", "insulin_dependent", "61", "2024-01-09", "train", "TRUE", "TRUE"},
                         {"7001", "UAB", "pre_diabetes_lifestyle_controlled", "66", "2024-01-09", "test", "TRUE", "TRUE"}});
  write_participant(r, "1001", "pst", UsZone::kPacific);
  write_participant(r, "4001", "pst", UsZone::kPacific);
  write_participant(r, "7001", "cst", UsZone::kCentral);
  const IngestResult whole = ingest_aireadi(options_for(r));
  std::vector<IngestResult> parts;
  parts.push_back(ingest_aireadi(options_for(r), {"1001", "4001"}));
  parts.push_back(ingest_aireadi(options_for(r), {"7001"}));
  const IngestResult merged = merge_results(std::move(parts));
  ASSERT_EQ(merged.features.size(), whole.features.size());
  EXPECT_EQ(merged.features.x.values, whole.features.x.values);
  EXPECT_EQ(merged.features.y, whole.features.y);
  EXPECT_EQ(merged.features.group, whole.features.group);
}

// The synthetic raw release (`sensecf synth --raw`, both formats, a DST change
// in autumn and in spring, every quirk) read back: the ground truth the
// generator computed from its own local-time arrays, row for row.
class IngestSyntheticRelease : public ::testing::TestWithParam<std::string> {};

TEST_P(IngestSyntheticRelease, RecoversTheGroundTruthExactly) {
  test::TempDir dir;
  data::RawSynthOptions raw;
  raw.synth.n_participants = 12;
  raw.synth.seed = 3;
  raw.days = 6;
  raw.format = GetParam();
  const auto written = data::write_raw_cohort(raw, dir.path().string());
  IngestOptions o;
  o.root = dir.path().string();
  o.threads = 2;
  const IngestResult res = ingest_aireadi(o);
  EXPECT_EQ(res.dataset_root, written.dataset_root);
  data::DataOptions d;
  d.path = dir.file("ground_truth.csv");
  d.drop = {"gender"};
  const data::Dataset truth = data::read_csv(d);
  ASSERT_EQ(res.features.size(), truth.size());
  EXPECT_EQ(res.features.size(), written.windows_kept);
  EXPECT_EQ(res.candidate_windows - res.features.size(), written.windows_dropped);
  std::size_t mismatches = 0;
  for (std::size_t r = 0; r < truth.size(); ++r) {
    ASSERT_EQ(res.features.group[r], truth.group[r]) << "row " << r;
    EXPECT_EQ(res.features.y[r], truth.y[r]) << "row " << r << " of " << truth.group[r];
    for (const auto& f : truth.schema.features) {
      const double want = truth.x.at(r, truth.schema.index_of(f.name));
      double got = value(res, r, f.name.c_str());
      if (f.is_categorical()) {
        const auto& mine = res.features.schema.features[res.features.schema.index_of(f.name)];
        EXPECT_EQ(mine.categories[static_cast<std::size_t>(got)], f.categories[static_cast<std::size_t>(want)]);
        continue;
      }
      if (std::abs(got - want) > 1e-9 && ++mismatches < 10) {
        ADD_FAILURE() << truth.group[r] << " " << format_minutes(res.windows[r].local_start) << " " << f.name
                      << ": ingest " << got << ", ground truth " << want;
      }
    }
  }
  EXPECT_EQ(mismatches, 0u);
  // The participant without a watch is reported, and nothing else is wrong.
  ASSERT_EQ(res.problem_count, 1u);
  EXPECT_NE(res.problems[0].what.find("wearable_activity_monitor is FALSE"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(V2V3, IngestSyntheticRelease, ::testing::Values("v2", "v3"));

// Every file cut at many points, or with bytes overwritten, or replaced by
// binary garbage: the ingest never throws and never crashes; it reports the
// file by participant and name, and the clean participant keeps every window.
TEST(Ingest, DamagedFilesAreReportedWhereverTheDamageIs) {
  Release r;
  write_participants(r, {{"1001", "UW", "healthy", "51", "2024-01-09", "train", "TRUE", "TRUE"},
                         {"4002", "UCSD", "healthy", "47", "2024-01-09", "val", "TRUE", "TRUE"}});
  write_participant(r, "1001", "pst", UsZone::kPacific);
  write_participant(r, "4002", "pst", UsZone::kPacific);
  const std::vector<std::string> files = {std::string(kCgmDir) + "/4002/4002_DEX.json",
                                          r.garmin("4002", "sleep", "sleep"), r.garmin("4002", "stress", "stress"),
                                          r.garmin("4002", "physical_activity", "activity")};
  std::uint64_t state = 12345;
  auto next = [&state] {  // a fixed pseudo-random sequence (LCG)
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  for (const auto& rel : files) {
    const fs::path path = fs::path(r.root()) / rel;
    std::string original;
    {
      std::ifstream in(path, std::ios::binary);
      original.assign(std::istreambuf_iterator<char>(in), {});
    }
    for (int trial = 0; trial < 12; ++trial) {
      std::string damaged = original;
      if (trial < 5) {
        damaged.resize(next() % original.size());                       // cut anywhere (also at 0)
      } else if (trial < 10) {
        for (int k = 0; k < 4; ++k) damaged[next() % damaged.size()] = static_cast<char>(next() % 256);  // flip bytes
      } else if (trial == 10) {
        damaged = std::string("\x89PNG\r\n\x1a\n") + std::string(300, '\0');  // not JSON at all
      } else {
        damaged = "[1, 2, 3]";  // JSON, but not a release file
      }
      std::ofstream(path, std::ios::binary | std::ios::trunc) << damaged;
      IngestResult res;
      ASSERT_NO_THROW(res = ingest_aireadi(options_for(r))) << rel << " trial " << trial;
      EXPECT_EQ(res.participants[0].windows, 24u) << rel << " trial " << trial;  // 1001 is untouched
      EXPECT_EQ(res.participants[0].problems, 0u);
      if (trial < 5 || trial >= 10) {
        ASSERT_GE(res.problem_count, 1u) << rel << " trial " << trial;
        EXPECT_EQ(res.problems[0].participant, "4002");
        EXPECT_EQ(res.problems[0].file, rel);
      }
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc) << original;
  }
}

TEST(Ingest, LayoutErrorsSayWhatWasLookedFor) {
  test::TempDir dir;
  IngestOptions o;
  o.root = dir.file("nowhere");
  EXPECT_THROW_WITH(ingest_aireadi(o), UsageError, "does not exist");
  o.root = dir.path().string();
  EXPECT_THROW_WITH(ingest_aireadi(o), UsageError, "no participants.tsv");
  dir.write("participants.tsv", "id\tage\n1\t50\n");
  EXPECT_THROW_WITH(ingest_aireadi(o), Error, "no person_id (v3) or participant_id (v2) column");
}

}  // namespace
}  // namespace sensecf::ingest
