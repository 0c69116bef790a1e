// The synthetic RAW AI-READI cohort (data/synth_raw.h): determinism, the v2 and
// v3 layouts, the quirks of the real files, parseable JSON, timestamps that
// round-trip, and a ground truth that an independent reading of the files (the
// rules of docs/aireadi.md, re-implemented here) reproduces exactly.
#include <gtest/gtest.h>
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sensecf/core/civil_time.h"
#include "sensecf/core/error.h"
#include "sensecf/data/csv.h"
#include "sensecf/data/synth_raw.h"
#include "test_util.h"

namespace sensecf::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

RawSynthOptions raw_options(int participants, int days, const std::string& format = "v2",
                            unsigned long seed = 7) {
  RawSynthOptions o;
  o.synth.n_participants = participants;
  o.synth.seed = seed;
  o.days = days;
  o.format = format;
  return o;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Relative path -> contents of every file under `dir`.
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = slurp(e.path());
  return files;
}

std::vector<std::vector<std::string>> read_table(const fs::path& path, char sep) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream ls(line);
    while (std::getline(ls, cell, sep)) cells.push_back(cell);
    if (!line.empty() && line.back() == sep) cells.emplace_back();
    rows.push_back(cells);
  }
  return rows;
}

std::size_t column(const std::vector<std::string>& header, const std::string& name) {
  const auto it = std::find(header.begin(), header.end(), name);
  EXPECT_NE(it, header.end()) << name;
  return static_cast<std::size_t>(it - header.begin());
}

json load_json(const fs::path& path) { return json::parse(slurp(path)); }

std::string garmin_file(const fs::path& root, const std::string& id, const std::string& folder,
                        const std::string& suffix) {
  return (root / "wearable_activity_monitor" / folder / "garmin_vivosmart5" / id / (id + suffix)).string();
}
std::string cgm_file(const fs::path& root, const std::string& id) {
  return (root / "wearable_blood_glucose/continuous_glucose_monitoring/dexcom_g6" / id / (id + "_DEX.json"))
      .string();
}

TEST(SynthRaw, SameSeedSameBytes) {
  test::TempDir a, b;
  const auto sa = write_raw_cohort(raw_options(6, 2), a.path().string());
  const auto sb = write_raw_cohort(raw_options(6, 2), b.path().string());
  EXPECT_EQ(tree(a.path()), tree(b.path()));
  EXPECT_EQ(sa.bytes, sb.bytes);
  EXPECT_EQ(sa.files, sb.files);
  // participants.tsv, 2 manifests, 2 ground-truth files, 1 CGM file each,
  // 3 Garmin files each but the one without a watch.
  EXPECT_EQ(sa.files, 5u + 6u + 3u * 5u);
  test::TempDir c;
  write_raw_cohort(raw_options(6, 2, "v2", 8), c.path().string());
  EXPECT_NE(slurp(a.file("ground_truth.csv")), slurp(c.file("ground_truth.csv")));
}

TEST(SynthRaw, V2AndV3Layouts) {
  test::TempDir d2, d3;
  const auto s2 = write_raw_cohort(raw_options(6, 2, "v2"), d2.path().string());
  const auto s3 = write_raw_cohort(raw_options(6, 2, "v3"), d3.path().string());
  const fs::path root2 = d2.path();
  const fs::path root3 = d3.path() / raw_v3_folder() / "dataset";
  EXPECT_EQ(fs::path(s2.dataset_root), root2);
  EXPECT_EQ(fs::path(s3.dataset_root), root3);
  EXPECT_TRUE(fs::exists(root2 / "participants.tsv"));
  EXPECT_TRUE(fs::exists(root3 / "participants.tsv"));
  EXPECT_FALSE(fs::exists(d3.path() / "participants.tsv"));
  for (const fs::path& top : {d2.path(), d3.path()}) {
    EXPECT_TRUE(fs::exists(top / "ground_truth.csv"));
    EXPECT_TRUE(fs::exists(top / "ground_truth.windows.csv"));
  }
  EXPECT_FALSE(fs::exists(root3 / "ground_truth.csv"));
  // v3 unpacks to exactly one folder holding dataset/.
  std::size_t folders = 0;
  for (const auto& e : fs::directory_iterator(d3.path())) folders += e.is_directory();
  EXPECT_EQ(folders, 1u);

  EXPECT_EQ(read_table(root2 / "participants.tsv", '\t')[0][0], "participant_id");
  EXPECT_EQ(read_table(root3 / "participants.tsv", '\t')[0][0], "person_id");
  EXPECT_EQ(read_table(root2 / "wearable_blood_glucose/manifest.tsv", '\t')[0][0], "participant_id");
  EXPECT_EQ(read_table(root3 / "wearable_activity_monitor/manifest.tsv", '\t')[0][0], "person_id");

  const std::string id = read_table(root2 / "participants.tsv", '\t')[1][0];
  const json sleep2 = load_json(garmin_file(root2, id, "sleep", "_sleep.json"));
  const json sleep3 = load_json(garmin_file(root3, id, "sleep", "_sleep.json"));
  ASSERT_FALSE(sleep2["body"]["sleep"].empty());
  EXPECT_TRUE(sleep2["body"]["sleep"][0].contains("sleep_stage_time_frame"));
  EXPECT_FALSE(sleep2["body"]["sleep"][0].contains("effective_time_frame"));
  EXPECT_TRUE(sleep3["body"]["sleep"][0].contains("effective_time_frame"));
  EXPECT_FALSE(sleep2["header"].contains("timezone"));
  const std::string zone = id[0] == '7' ? "cst" : "pst";
  EXPECT_EQ(sleep3["header"]["timezone"], zone);
  EXPECT_FALSE(load_json(cgm_file(root2, id))["header"].contains("timezone"));
  EXPECT_EQ(load_json(cgm_file(root3, id))["header"]["timezone"], zone);
  // The same records and the same ground truth either way.
  EXPECT_EQ(load_json(cgm_file(root2, id))["body"], load_json(cgm_file(root3, id))["body"]);
  EXPECT_EQ(slurp(d2.file("ground_truth.csv")), slurp(d3.file("ground_truth.csv")));
  EXPECT_EQ(slurp(d2.file("ground_truth.windows.csv")), slurp(d3.file("ground_truth.windows.csv")));
}

// What an independent reading of the files finds (docs/aireadi.md, defaults).
struct Reread {
  std::vector<std::string> windows;  // ground_truth.windows.csv lines
  std::vector<std::string> rows;     // participant_id + 8 features + label, formatted
  std::set<std::string> quirks;
};

double round_to(double v, int k) {
  const double s = std::pow(10.0, k);
  return std::round(v * s) / s;
}

Reread reread(const fs::path& root) {
  Reread out;
  const auto participants = read_table(root / "participants.tsv", '\t');
  const auto& header = participants[0];
  std::vector<std::vector<std::string>> rows(participants.begin() + 1, participants.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return std::stoll(a[0]) < std::stoll(b[0]); });
  const std::size_t wam = column(header, "wearable_activity_monitor");
  for (const auto& row : rows) {
    const std::string& id = row[0];
    const bool watch = row[wam] == "TRUE";  // else no Garmin files: every window dropped
    if (!watch) {
      out.quirks.insert("FALSE column");
      EXPECT_FALSE(fs::exists(garmin_file(root, id, "stress", "_stress.json")));
    }
    const UsZone zone = id[0] == '7' ? UsZone::kCentral : UsZone::kPacific;
    auto parse = [&](const json& text) {
      const std::string s = text.get<std::string>();
      const auto t = parse_utc_timestamp(s);
      EXPECT_TRUE(t.has_value()) << s;
      if (s.back() == 'Z') {
        EXPECT_EQ(format_utc_timestamp(*t), s);  // round trip
      } else {
        out.quirks.insert("pilot timestamp");
      }
      return *t;
    };
    struct Reading {
      std::int64_t utc, local;
      int value;
    };
    std::vector<Reading> cgm;
    // (Each file in a named json: a range-for over part of a temporary would dangle.)
    const json cgm_json = load_json(cgm_file(root, id));
    for (const json& r : cgm_json["body"]["cgm"]) {
      const std::int64_t t = parse(r["effective_time_frame"]["time_interval"]["start_date_time"]);
      const json& v = r["blood_glucose"]["value"];
      int value = 0;
      if (v.is_string()) {
        out.quirks.insert(v.get<std::string>());
        value = v == "Low" ? 40 : 400;
      } else {
        value = v.get<int>();
      }
      cgm.push_back({t, to_local(zone, t), value});
    }
    std::map<std::int64_t, std::array<std::int64_t, 4>> nights;
    std::vector<std::pair<std::int64_t, int>> stress;
    struct Step {
      std::int64_t local_end, seconds;
      long long steps;
    };
    std::vector<Step> steps;
    if (watch) {
      const json sleep = load_json(garmin_file(root, id, "sleep", "_sleep.json"));
      const std::string key = sleep.contains("header") && sleep["header"].contains("timezone")
                                  ? "effective_time_frame"
                                  : "sleep_stage_time_frame";
      const std::vector<std::string> stages = {"awake", "light", "deep", "rem"};
      for (const json& r : sleep["body"]["sleep"]) {
        const std::string stage = r["sleep_stage_state"];
        if (stage == "unknown") {
          out.quirks.insert("unknown stage");
          continue;
        }
        const std::int64_t a = parse(r[key]["time_interval"]["start_date_time"]);
        const std::int64_t b = parse(r[key]["time_interval"]["end_date_time"]);
        const auto s =
            static_cast<std::size_t>(std::find(stages.begin(), stages.end(), stage) - stages.begin());
        EXPECT_LT(s, 4u) << stage;
        // Durations are physical (UTC) seconds, also across a DST change.
        if (utc_offset(zone, a) != utc_offset(zone, b)) out.quirks.insert("sleep record across a DST change");
        nights[floor_div(to_local(zone, a) + 43200, 86400)][s] += b - a;
      }
      const json stress_json = load_json(garmin_file(root, id, "stress", "_stress.json"));
      for (const json& r : stress_json["body"]["stress"]) {
        const int v = r["stress"]["value"];
        if (v < 0) out.quirks.insert("stress " + std::to_string(v));
        stress.emplace_back(to_local(zone, parse(r["effective_time_frame"]["date_time"])), v);
      }
      const json activity_json = load_json(garmin_file(root, id, "physical_activity", "_activity.json"));
      for (const json& r : activity_json["body"]["activity"]) {
        const json& v = r["base_movement_quantity"]["value"];
        const std::int64_t a = parse(r["effective_time_frame"]["time_interval"]["start_date_time"]);
        const std::int64_t b = parse(r["effective_time_frame"]["time_interval"]["end_date_time"]);
        long long n = 0;
        if (v.is_string()) {
          if (v == "") {
            out.quirks.insert("empty step value");
            EXPECT_EQ(r["activity_name"], "");
            continue;
          }
          out.quirks.insert("string step value");
          n = std::stoll(v.get<std::string>());
        } else {
          n = v.get<long long>();
        }
        steps.push_back({to_local(zone, b), b - a, n});
      }
    }
    std::set<std::int64_t> days;
    for (const Reading& r : cgm) days.insert(floor_div(r.local, 86400));
    for (std::int64_t day : days) {
      for (int h = 8; h <= 19; ++h) {
        const std::int64_t ws = day * 86400 + h * 3600, we = ws + 7200;
        std::vector<const Reading*> in;
        for (const Reading& r : cgm)
          if (r.local >= ws && r.local < we) in.push_back(&r);
        long long stress_sum = 0, stress_n = 0;
        for (const auto& [t, v] : stress)
          if (t >= ws && t < we && v >= 0) {
            stress_sum += v;
            ++stress_n;
          }
        long long step_sum = 0;
        std::int64_t seconds = 0;
        for (const Step& s : steps)
          if (s.local_end > ws && s.local_end <= we) {
            step_sum += s.steps;
            seconds += s.seconds;
          }
        const auto night = nights[day];
        const std::int64_t total = night[0] + night[1] + night[2] + night[3];
        const char* drop = in.size() < 18     ? "cgm"
                           : stress_n < 20    ? "stress"
                           : seconds < 3600   ? "steps"
                           : total < 180 * 60 ? "sleep"
                                              : "";
        out.windows.push_back(fmt::format("{},{},{},{},{},{}", id, format_minutes(ws), in.size(), stress_n,
                                          static_cast<double>(seconds) / 60.0, drop));
        if (*drop) continue;
        long long sum = 0;
        int in_range = 0, hyper = 0, run = 0;
        std::int64_t prev = 0;
        for (const Reading* r : in) {
          sum += r->value;
          in_range += r->value >= 70 && r->value <= 180;
          if (r->value > 180) {
            run = run > 0 && r->utc - prev <= 450 ? run + 1 : 1;
            hyper += run == 3;
          } else {
            run = 0;
          }
          prev = r->utc;
        }
        const double n = static_cast<double>(in.size());
        std::string line = id;
        for (int s = 0; s < 4; ++s)
          line +=
              fmt::format(",{}", round_to(100.0 * static_cast<double>(night[static_cast<std::size_t>(s)]) /
                                              static_cast<double>(total),
                                          2));
        line +=
            fmt::format(",{},{},{},{},{}", round_to(static_cast<double>(step_sum) / (seconds / 60.0), 2),
                        round_to(static_cast<double>(sum) / n, 1), hyper, round_to(100.0 * in_range / n, 2),
                        static_cast<double>(stress_sum) / static_cast<double>(stress_n) > 75.0 ? 1 : 0);
        out.rows.push_back(line);
      }
    }
  }
  return out;
}

TEST(SynthRaw, QuirksJsonAndExactGroundTruth) {
  test::TempDir dir;
  const auto summary = write_raw_cohort(raw_options(10, 3, "v3"), dir.path().string());
  const fs::path root = summary.dataset_root;
  const Reread r = reread(root);
  for (const char* quirk :
       {"Low", "High", "string step value", "empty step value", "stress -1", "stress -2", "unknown stage",
        "FALSE column", "pilot timestamp", "sleep record across a DST change"}) {
    EXPECT_TRUE(r.quirks.count(quirk)) << "missing quirk: " << quirk;
  }
  // The participant without a watch: None in the manifest.
  const auto manifest = read_table(root / "wearable_activity_monitor/manifest.tsv", '\t');
  const std::size_t sleep_col = column(manifest[0], "sleep_filepath");
  std::size_t none = 0;
  for (std::size_t i = 1; i < manifest.size(); ++i) {
    none += manifest[i][sleep_col] == "None";
    if (manifest[i][sleep_col] != "None") {
      EXPECT_EQ(manifest[i][sleep_col].front(), '/');
      EXPECT_TRUE(fs::exists(root / manifest[i][sleep_col].substr(1)));
    }
  }
  EXPECT_EQ(none, 1u);
  for (const auto& row : read_table(root / "wearable_blood_glucose/manifest.tsv", '\t'))
    if (row[0] != "person_id") {
      EXPECT_TRUE(fs::exists(root / row[1].substr(1))) << row[1];
    }

  // The windows table, line for line.
  auto windows = read_table(dir.file("ground_truth.windows.csv"), ',');
  ASSERT_FALSE(windows.empty());
  EXPECT_EQ(windows[0], (std::vector<std::string>{"participant_id", "start", "cgm_readings",
                                                  "stress_readings", "activity_minutes", "drop_reason"}));
  std::istringstream wtext(slurp(dir.file("ground_truth.windows.csv")));
  std::string line;
  std::getline(wtext, line);
  std::vector<std::string> written;
  while (std::getline(wtext, line)) written.push_back(line);
  EXPECT_EQ(written, r.windows);

  // The feature table: same rows, same numbers (to 1e-9), same labels.
  const auto truth = read_table(dir.file("ground_truth.csv"), ',');
  ASSERT_EQ(truth.size(), r.rows.size() + 1);
  EXPECT_EQ(truth[0],
            (std::vector<std::string>{"participant_id", "awake_pct", "light_pct", "deep_pct", "rem_pct",
                                      "steps_mean", "glucose_mean", "hyper_events", "tir_pct", "age",
                                      "gender", "medication", "subgroup", "high_stress"}));
  EXPECT_EQ(truth.size() - 1, summary.windows_kept);
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    std::vector<std::string> mine;
    std::istringstream ls(r.rows[i]);
    for (std::string cell; std::getline(ls, cell, ',');) mine.push_back(cell);
    const auto& t = truth[i + 1];
    ASSERT_EQ(mine.size(), 10u);
    EXPECT_EQ(t[0], mine[0]);
    for (std::size_t c = 1; c <= 8; ++c) EXPECT_NEAR(std::stod(t[c]), std::stod(mine[c]), 1e-9) << r.rows[i];
    EXPECT_EQ(t[10], "not_provided");
    EXPECT_EQ(t[13], mine[9]) << r.rows[i];
  }
}

TEST(SynthRaw, GroundTruthLabelsAndDrops) {
  test::TempDir dir;
  const auto summary = write_raw_cohort(raw_options(30, 4, "v2", 11), dir.path().string());
  EXPECT_EQ(summary.participants, 30u);
  std::map<std::string, int> reasons;
  for (const auto& row : read_table(dir.file("ground_truth.windows.csv"), ',')) {
    if (row[0] == "participant_id") continue;
    ++reasons[row.size() > 5 ? row[5] : ""];
  }
  for (const char* reason : {"", "cgm", "stress", "steps", "sleep"}) {
    EXPECT_GT(reasons[reason], 0) << "no window with drop reason '" << reason << "'";
  }
  EXPECT_EQ(static_cast<std::size_t>(reasons[""]), summary.windows_kept);
  EXPECT_EQ(
      static_cast<std::size_t>(reasons["cgm"] + reasons["stress"] + reasons["steps"] + reasons["sleep"]),
      summary.windows_dropped);

  // It reads back as a sensecf feature table, with both labels.
  // gender is the placeholder "not_provided" everywhere: a constant column,
  // which the reader refuses unless it is dropped.
  DataOptions options;
  options.path = dir.file("ground_truth.csv");
  options.drop = {"gender"};
  options.categorical = {"medication", "subgroup"};
  options.immutable = {"age", "medication", "subgroup"};
  const Dataset data = read_csv(options);
  ASSERT_EQ(data.size(), summary.windows_kept);
  const double positive = static_cast<double>(data.count_label(1)) / static_cast<double>(data.size());
  EXPECT_GT(positive, 0.10);
  EXPECT_LT(positive, 0.60);
  EXPECT_EQ(data.count_label(1), summary.positives);
  for (std::size_t i = 0; i < data.size(); ++i) {
    const double* row = data.x.row(i);
    EXPECT_NEAR(row[0] + row[1] + row[2] + row[3], 100.0, 0.03);
    EXPECT_GE(row[5], 40.0);
    EXPECT_LE(row[5], 400.0);
    EXPECT_GE(row[4], 0.0);
  }
  // The label follows the ground-truth model: positives have higher glucose or
  // less deep sleep on average.
  double glucose1 = 0, glucose0 = 0, deep1 = 0, deep0 = 0;
  const std::size_t n1 = data.count_label(1), n0 = data.count_label(0);
  for (std::size_t i = 0; i < data.size(); ++i) {
    const double* row = data.x.row(i);
    (data.y[i] ? glucose1 : glucose0) += row[data.schema.index_of("glucose_mean")];
    (data.y[i] ? deep1 : deep0) += row[data.schema.index_of("deep_pct")];
  }
  EXPECT_TRUE(glucose1 / n1 > glucose0 / n0 || deep1 / n1 < deep0 / n0);
}

TEST(SynthRaw, BadOptionsAndCommandLine) {
  test::TempDir dir;
  EXPECT_THROW_WITH(write_raw_cohort(raw_options(5, 0), dir.path().string()), UsageError, "synth.days");
  EXPECT_THROW_WITH(write_raw_cohort(raw_options(5, 2, "v4"), dir.path().string()), UsageError, "v2 or v3");
  const auto r = test::run_command(test::sensecf_bin() + " synth --raw " + dir.file("cli") +
                                   " --format v3 --synth.participants 10 --synth.days 1 --log.level warn");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir.path() / "cli" / raw_v3_folder() / "dataset" / "participants.tsv"));
  EXPECT_TRUE(fs::exists(dir.path() / "cli" / "ground_truth.csv"));
}

}  // namespace
}  // namespace sensecf::data
