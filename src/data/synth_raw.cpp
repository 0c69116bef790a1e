// The synthetic RAW AI-READI cohort (data/synth_raw.h): files in the release's
// layout and formats, and the features an ingest must recover from them.
//
// Per participant i (the ids, study group, age and random effects of
// make_synthetic_cohort with the same seed; two streams: the model's own,
// "synth.participant.<i>", drawn as synth.cpp draws it, one night and one day
// per local date, and "synth.raw.participant.<i>" for everything the raw files
// add, so participants do not depend on each other):
//   - time zone Pacific (1xxx, 4xxx) or Central (7xxx); the wear starts on a
//     local date in 2023-07-01 .. 2024-06-30 at a local time between 09:00 and
//     15:00 (to the second: that is the CGM's second offset) and lasts `days`
//     days; participant index 2 starts 3 days before the autumn DST change of
//     2023-11-05 and index 4 four days before the spring change of 2024-03-10
//     (when there are >= 5 participants and days allow), so the spans cross both;
//   - the sensors sample on the physical (UTC) clock: CGM every 300 s from the
//     start; every local time is to_local(zone, utc) (civil_time.h), the local
//     anchors (wear start, bedtimes, charging) are converted with from_local;
//   - CGM: 08:00-21:00 local of local date d (d-th date of the wear) is day d's
//     simulate_day trace (slot (t - 08:00) / 300 s), rounded to an integer; the
//     other hours interpolate (log space) from 20:55 of one day to 08:00 of the
//     next with a small nocturnal dip and an AR(1) deviation, clamped to
//     [30, 420]; a value below 40 is written "Low" (truth 40), above 400 "High"
//     (truth 400), and 1-2 readings per participant are forced to each;
//     1 + days/3 (+0/1) sensor gaps of 30-90 min have no readings;
//   - Garmin (sleep, stress, steps) worn from 10-40 min after the CGM start to
//     0-60 min before its end, except for one participant (index 3 with >= 5
//     participants) who has none (wearable_activity_monitor FALSE, manifest
//     None, no files; its candidate windows are all dropped, cgm or stress); every 2-3 days a charging gap of
//     2-3 h starting 09:30-18:00 local without any Garmin record, and max(1, days/3) step-only gaps of 70-110
//     min (daytime) without activity records (the stress records go on);
//   - sleep: one night per evening of the wear (5% missing, 5% short: 100-170
//     min, else 6-8 h), bedtime 22:00-00:30 local, contiguous stage records of
//     whole 30-s units with the shares of draw_night for the next date, in
//     ~90-min cycles (light, deep, light, rem, awake); 30% of nights have one
//     `unknown` record (1-10 min) inside;
//   - steps: records of 45-75 s (each interval (previous, this]), none across a
//     gap (the first record after a gap starts 45-75 s before its end); the
//     rate (steps/min) of hour 08..20 of date d is day d's hourly rate, else a
//     fraction of the participant's rate (06-07, 21: 0.5; 22-23: 0.15; 00-05:
//     0.03); a record walks with probability clamp(rate/50, 0.03, 0.9) (value
//     round(rate*minutes/q*lognormal), name "walking", 15% "generic"), else
//     "sedentary" 0; 3% are "" / "" (unknown type); 4% of the positive values
//     are written as strings ("70"); 0.03% of the records (and record 10 of
//     participant index 1) have pilot timestamps "YYYY-MM-DD HH:MM:SS";
//   - stress: a record every 120-180 s while worn (outside charging gaps), the
//     value round(level + N(0, 9)) clamped to 0-100, 5% replaced by -1 or -2.
//     The level of local hour H (08..20) of date d comes from the ground-truth
//     model: S_w = stress_score (synth.cpp) of window w's features (the
//     ground-truth values computed below; where a window lacks a modality, the
//     model's values of that day), the hour's score is the mean of the S_w of
//     the (one or two) windows containing it, latent = score + trait +
//     N(0, label_noise^2) (per hour), level = 100 sg((latent - kStressCentre) /
//     kStressSlope + logit(0.75)), i.e. 75 at latent = kStressCentre. Other
//     hours: level 25 (22-06) or 30. The label of a window is the mean of its
//     valid values > 75, so it follows the window's features through the model.
//
// Ground truth (docs/aireadi.md with default options), from the generator's
// own arrays: local = to_local(zone, utc) of every record; CGM days = the local
// dates of the readings; window w = [d 0h + H h, +2 h) local, H = 8..19;
// glucose_mean = round(10 * (sum / n)) / 10 over readings with local in the
// window (Low 40, High 400), tir_pct = round(100 * (100.0 * in_range / n)) /
// 100; hyper_events counts runs of >= 3 readings > 180 whose neighbours are
// <= 450 s apart, within the window; sleep: records whose local start lies in
// [d - 12 h, d + 12 h), durations end - start in UTC seconds (physical time,
// also across a DST change), `unknown` left out, pct = round(100 * (100.0 *
// stage / total)) / 100; steps: records whose local end lies in (start, end],
// "" left out of both sums, steps_mean = round(100 * (sum / (seconds / 60.0)))
// / 100 and activity_minutes = seconds / 60 of the same (numeric) records; the
// label: valid stress values (0-100) with local time in the window, mean > 75.
// Drop order cgm (< 18 readings), stress (< 20 valid values), steps (< 60
// minutes), sleep (< 180 minutes of the four stages).
// Exact reproducibility: every time is a whole second, glucose and steps are
// integers; the generator nudges the data (a reading or a step value + 1, a
// sleep record + 30 s) until no window's glucose_mean, steps_mean or sleep
// percentage is an exact rounding tie (x.x5, x.xx5), so any order of the same
// arithmetic rounds the same way.
#include "sensecf/data/synth_raw.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include "sensecf/core/civil_time.h"
#include "sensecf/core/error.h"
#include "sensecf/core/random.h"
#include "sensecf/data/csv.h"
#include "synth_model.h"

namespace sensecf::data {

namespace fs = std::filesystem;
using namespace synth_model;

namespace {

constexpr std::int64_t kDaySec = 86400;
constexpr std::int64_t kHourSec = 3600;
constexpr std::int64_t kCgmStep = 300;
constexpr int kFirstHour = 8;  // first window start (local)
constexpr int kLastHour = 19;  // last window start
constexpr int kWinPerDay = kLastHour - kFirstHour + 1;
constexpr std::int64_t kDaytimeStart = 8 * kHourSec;  // simulate_day's trace: 08:00-21:00
constexpr std::int64_t kDaytimeEnd = 21 * kHourSec;

// The ingest's defaults (docs/aireadi.md).
constexpr int kMinCgm = 18;
constexpr int kMinStress = 20;
constexpr std::int64_t kMinActivitySec = 60 * 60;
constexpr std::int64_t kMinSleepSec = 180 * 60;
constexpr int kCgmLow = 40;
constexpr int kCgmHigh = 400;
constexpr int kHyperThreshold = 180;
constexpr int kHyperRun = 3;
constexpr std::int64_t kConsecutiveSec = 450;
constexpr double kStressThreshold = 75.0;

// Stress level: 75 at latent = kStressCentre (see the top).
constexpr double kStressCentre = 0.0;
constexpr double kStressSlope = 1.5;

const char* const kStageNames[] = {"awake", "light", "deep", "rem", "unknown"};
enum Stage : int { kStAwake = 0, kStLight, kStDeep, kStRem, kStUnknown };
const char* const kActivityNames[] = {"walking", "generic", "sedentary", ""};
enum ActivityName : int { kWalking = 0, kGeneric, kSedentary, kUnknownType };

const char* const kDatatypes[] = {
    "cardiac_ecg",           "clinical_data", "environment",         "retinal_flio",
    "retinal_oct",           "retinal_octa",  "retinal_photography", "wearable_activity_monitor",
    "wearable_blood_glucose"};
constexpr std::size_t kNumDatatypes = 9;
constexpr std::size_t kActivityMonitor = 7;

const char* const kSites[] = {"UW", "UCSD", "UAB"};

struct Cgm {
  std::int64_t utc = 0;
  std::int64_t local = 0;
  int value = 0;  // ground truth, mg/dL
  char text = 0;  // 0: written as the number; 'L': "Low"; 'H': "High"
};
struct SleepRecord {
  int stage = kStLight;
  std::int64_t start = 0, end = 0;  // UTC
};
struct Activity {
  std::int64_t start = 0, end = 0, local_end = 0;
  int steps = 0;
  int name = kSedentary;
  char form = 'n';  // 'n': number, 's': numeric string, 'e': "" (unknown type)
  bool pilot = false;
};
struct Stress {
  std::int64_t utc = 0, local = 0;
  int value = 0;
};
struct Gap {
  std::int64_t start = 0, end = 0;  // UTC, [start, end)
};

// One candidate window's inputs and results.
struct Window {
  std::vector<std::size_t> cgm;       // reading indices, time order
  std::vector<std::size_t> activity;  // numeric record indices, time order
  std::int64_t steps = 0;
  std::int64_t step_seconds = 0;
  int stress_valid = 0;
  long long stress_sum = 0;
  double score = 0.0;
  std::array<double, 12> row{};  // Col order
  const char* drop = "";
  int label = 0;
};

struct Subject {
  std::size_t index = 0;
  std::string id;
  long long number = 0;
  Participant p;
  int group = 0;  // index into kGroups
  UsZone zone = UsZone::kPacific;
  const char* tz = "pst";
  std::size_t site = 0;
  std::int64_t first_date = 0;  // days since the epoch (local date)
  std::string split;
  std::array<bool, kNumDatatypes> datatypes{};
  bool garmin = true;
  std::string wrist, hand, transmitter_id, device_id;
  std::int64_t transmitter_start = 0;
  std::int64_t cgm_start = 0, cgm_end = 0, garmin_start = 0, garmin_end = 0;
  std::vector<std::array<double, 4>> nights;  // [date index] shares of the night before
  std::vector<Day> days;                      // [date index]
  std::vector<Cgm> cgm;
  std::vector<SleepRecord> sleep;
  std::vector<Activity> activity;
  std::vector<Stress> stress;
  std::vector<Gap> charging, step_gaps;
  std::vector<Window> windows;                           // [date index * kWinPerDay + hour - kFirstHour]
  std::vector<bool> cgm_date;                            // [date index]: a CGM reading that day
  std::vector<std::int64_t> sleep_seconds_total;         // [date index] night before
  std::vector<std::array<std::int64_t, 4>> sleep_stage;  // [date index]
};

// Exact rounding ties of round(v * 10^k) for v = num / den (integers, den > 0):
// v * 10^k = k + 1/2 exactly.
bool is_tie(long long num, long long den, long long scale) {
  const long long twice = 2 * scale * num;
  return den > 0 && twice % den == 0 && ((twice / den) % 2 != 0);
}

void append_timestamp(std::string& out, std::int64_t utc, bool pilot) {
  const std::int64_t day = floor_div(utc, kDaySec);
  const std::int64_t sod = utc - day * kDaySec;
  const CivilDate c = civil_from_days(day);
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf,
                              pilot ? "%04d-%02d-%02d %02d:%02d:%02d" : "%04d-%02d-%02dT%02d:%02d:%02dZ",
                              c.year, c.month, c.day, static_cast<int>(sod / 3600),
                              static_cast<int>(sod / 60 % 60), static_cast<int>(sod % 60));
  out.append(buf, static_cast<std::size_t>(n));
}

std::string date_text(std::int64_t day) {
  const CivilDate c = civil_from_days(day);
  return fmt::format("{:04d}-{:02d}-{:02d}", c.year, c.month, c.day);
}

// Buffered file output that counts what it wrote.
class OutFile {
 public:
  OutFile(const fs::path& path, RawSynthSummary& summary) : path_(path), summary_(summary) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    file_ = std::fopen(path.string().c_str(), "wb");
    if (!file_) {
      throw Error("synth --raw: cannot write '" + path.string() + "'",
                  "does the folder exist and is it writable?");
    }
    buf_.reserve(kFlush + 4096);
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;
  ~OutFile() {
    if (file_) std::fclose(file_);
  }
  std::string& buf() { return buf_; }
  void maybe_flush() {
    if (buf_.size() >= kFlush) flush();
  }
  void close() {
    flush();
    const bool ok = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok || failed_) throw Error("synth --raw: writing '" + path_.string() + "' failed (disk full?)");
    summary_.files += 1;
    summary_.bytes += written_;
  }

 private:
  static constexpr std::size_t kFlush = 1 << 20;
  void flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), file_) != buf_.size()) failed_ = true;
    written_ += buf_.size();
    buf_.clear();
  }
  fs::path path_;
  RawSynthSummary& summary_;
  std::FILE* file_ = nullptr;
  std::string buf_;
  std::size_t written_ = 0;
  bool failed_ = false;
};

std::string hex_id(Rng& rng, int digits) {
  static const char* kHex = "0123456789ABCDEF";
  std::string s;
  for (int i = 0; i < digits; ++i) s += kHex[rng.below(16)];
  return s;
}

// Whether (a, b] overlaps a gap [s, e); returns its end when it does.
const Gap* overlapping(const std::vector<Gap>& gaps, std::int64_t a, std::int64_t b) {
  for (const Gap& g : gaps)
    if (g.start < b && g.end > a) return &g;
  return nullptr;
}

class Generator {
 public:
  Generator(const RawSynthOptions& options, std::size_t n_participants)
      : o_(options), n_(n_participants), days_(options.days) {}

  Subject make(std::size_t i, const std::string& id) {
    Subject s;
    s.index = i;
    s.id = id;
    s.number = std::stoll(id);
    Rng model(participant_seed(o_.synth.seed, i));
    Rng r(derive_seed(o_.synth.seed, "synth.raw.participant." + std::to_string(i)));
    s.p = draw_participant(model, id);
    s.group = static_cast<int>(s.p.group - kGroups.data());
    s.site = id[0] == '1' ? 0 : id[0] == '4' ? 1 : 2;
    s.zone = s.site == 2 ? UsZone::kCentral : UsZone::kPacific;
    s.tz = s.site == 2 ? "cst" : "pst";
    draw_identity(s, r);
    // The model's nights and days, in synth.cpp's order (night, then day).
    for (int k = 0; k <= days_; ++k) {
      s.nights.push_back(draw_night(model, s.p));
      s.days.push_back(simulate_day(model, s.p));
    }
    make_cgm(s, r);
    if (s.garmin) {
      make_garmin_gaps(s, r);
      make_sleep(s, r);
      make_activity(s, r);
    }
    index_windows(s);
    fix_ties(s);
    compute_features(s);
    if (s.garmin) make_stress(s, r);
    finish_windows(s);  // without a watch: every window dropped (cgm or stress)
    return s;
  }

 private:
  bool quirks() const { return n_ >= 5; }

  void draw_identity(Subject& s, Rng& r) {
    const std::int64_t first = days_from_civil(2023, 7, 1);
    s.first_date = first + static_cast<std::int64_t>(r.below(366));
    if (quirks() && s.index == 2) s.first_date = days_from_civil(2023, 11, 5) - std::min(days_ - 1, 3);
    if (quirks() && s.index == 4) s.first_date = days_from_civil(2024, 3, 10) - std::min(days_ - 1, 4);
    const double u = r.uniform();
    s.split = u < 0.70 ? "train" : u < 0.85 ? "val" : "test";
    for (std::size_t k = 0; k < kNumDatatypes; ++k) s.datatypes[k] = r.bernoulli(0.95);
    s.datatypes[kActivityMonitor] = true;
    s.datatypes[kNumDatatypes - 1] = true;  // wearable_blood_glucose
    if (quirks() && s.index == 3) {
      s.garmin = false;
      s.datatypes[kActivityMonitor] = false;
    }
    s.wrist = r.bernoulli(0.7) ? "left" : "right";
    s.hand = r.bernoulli(0.9) ? "right" : "left";
    s.transmitter_id = hex_id(r, 6);
    s.device_id = "DXCM-G6-" + hex_id(r, 10);
    const std::int64_t start_local =
        s.first_date * kDaySec + 9 * kHourSec + static_cast<std::int64_t>(r.below(6 * 3600));
    s.cgm_start = from_local(s.zone, start_local);
    s.cgm_end = s.cgm_start + days_ * kDaySec;
    s.transmitter_start = s.cgm_start - static_cast<std::int64_t>(r.below(20)) * kDaySec -
                          static_cast<std::int64_t>(r.below(kDaySec));
    s.garmin_start = s.cgm_start + 600 + static_cast<std::int64_t>(r.below(1800));
    s.garmin_end = s.cgm_end - static_cast<std::int64_t>(r.below(3600));
  }

  // Date index and second of the local day of a local time.
  std::pair<std::int64_t, std::int64_t> local_day(const Subject& s, std::int64_t local) const {
    const std::int64_t day = floor_div(local, kDaySec);
    return {day - s.first_date, local - day * kDaySec};
  }
  bool in_days(std::int64_t k) const { return k >= 0 && k <= days_; }

  void make_cgm(Subject& s, Rng& r) {
    const double sd = s.p.group->log_sd_slow * s.p.variability;
    constexpr double kPhi = 0.96;
    double ar = r.normal(0.0, sd);
    std::vector<Gap> gaps;
    const int n_gaps = 1 + days_ / 3 + static_cast<int>(r.below(2));
    for (int g = 0; g < n_gaps; ++g) {
      const std::int64_t start =
          s.cgm_start + static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(days_ * kDaySec)));
      gaps.push_back({start, start + 1800 + static_cast<std::int64_t>(r.below(3601))});
    }
    for (std::int64_t t = s.cgm_start; t < s.cgm_end; t += kCgmStep) {
      ar = kPhi * ar + std::sqrt(1.0 - kPhi * kPhi) * r.normal(0.0, sd);
      Cgm c;
      c.utc = t;
      c.local = to_local(s.zone, t);
      const auto [k, sod] = local_day(s, c.local);
      double v = 0.0;
      if (sod >= kDaytimeStart && sod < kDaytimeEnd && in_days(k)) {
        v = s.days[static_cast<std::size_t>(k)]
                .glucose[static_cast<std::size_t>((sod - kDaytimeStart) / kCgmStep)];
      } else {
        // Between 21:00 of date a and 08:00 of date a + 1.
        const std::int64_t a = sod >= kDaytimeEnd ? k : k - 1;
        const double frac = static_cast<double>(sod >= kDaytimeEnd ? sod - kDaytimeEnd : sod + 3 * kHourSec) /
                            static_cast<double>(11 * kHourSec);
        const double g0 = in_days(a) ? s.days[static_cast<std::size_t>(a)].glucose.back() : s.p.glucose_mean;
        const double g1 =
            in_days(a + 1) ? s.days[static_cast<std::size_t>(a + 1)].glucose.front() : s.p.glucose_mean;
        const double base =
            (1.0 - frac) * std::log(g0) + frac * std::log(g1) - 0.06 * std::sin(3.141592653589793 * frac);
        v = std::clamp(std::exp(base + ar), 30.0, 420.0);
      }
      const long iv = std::lround(v);
      if (iv < kCgmLow) {
        c.value = kCgmLow;
        c.text = 'L';
      } else if (iv > kCgmHigh) {
        c.value = kCgmHigh;
        c.text = 'H';
      } else {
        c.value = static_cast<int>(iv);
      }
      bool missing = false;
      for (const Gap& g : gaps) missing = missing || (t >= g.start && t < g.end);
      if (!missing) s.cgm.push_back(c);
    }
    // A few forced "Low" and "High" readings (sensor limits).
    if (!s.cgm.empty()) {
      for (char text : {'L', 'H'}) {
        const int n = 1 + static_cast<int>(r.below(2));
        for (int k = 0; k < n; ++k) {
          Cgm& c = s.cgm[r.below(s.cgm.size())];
          c.text = text;
          c.value = text == 'L' ? kCgmLow : kCgmHigh;
        }
      }
    }
  }

  void make_garmin_gaps(Subject& s, Rng& r) {
    for (std::int64_t day = s.first_date + 1 + static_cast<std::int64_t>(r.below(2));
         day < s.first_date + days_; day += 2 + static_cast<std::int64_t>(r.below(2))) {
      const std::int64_t start_local =
          day * kDaySec + 9 * kHourSec + 1800 + static_cast<std::int64_t>(r.below(8 * 3600 + 1800));
      const std::int64_t start = from_local(s.zone, start_local);
      s.charging.push_back({start, start + 7200 + static_cast<std::int64_t>(r.below(3601))});
    }
    const int n_step_gaps = std::max(1, days_ / 3);
    for (int g = 0; g < n_step_gaps; ++g) {
      const std::int64_t day =
          s.first_date + 1 +
          static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(std::max(1, days_ - 1))));
      const std::int64_t start_local =
          day * kDaySec + 8 * kHourSec + 1800 + static_cast<std::int64_t>(r.below(10 * 3600 + 1800));
      const std::int64_t start = from_local(s.zone, start_local);
      s.step_gaps.push_back({start, start + 4200 + static_cast<std::int64_t>(r.below(2401))});
    }
  }

  void make_sleep(Subject& s, Rng& r) {
    for (int n = 0; n < days_; ++n) {
      const std::array<double, 4>& pct = s.nights[static_cast<std::size_t>(n + 1)];
      const double u = r.uniform();
      const std::int64_t bedtime_local =
          (s.first_date + n) * kDaySec + 22 * kHourSec + static_cast<std::int64_t>(r.below(9000));
      const bool unknown = r.bernoulli(0.3);
      const std::int64_t unknown_units = 2 + static_cast<std::int64_t>(r.below(19));
      const double unknown_pos = r.uniform();
      if (u < 0.05) continue;  // no record that night
      const std::int64_t minutes = u < 0.10 ? 100 + static_cast<std::int64_t>(r.below(71))
                                            : 360 + static_cast<std::int64_t>(r.below(121));
      const std::int64_t units = 2 * minutes;  // 30-s units
      std::array<std::int64_t, 4> a{};
      for (int st : {kStAwake, kStDeep, kStRem})
        a[st] = std::llround(static_cast<double>(units) * pct[st] / 100.0);
      a[kStLight] = std::max<std::int64_t>(0, units - a[kStAwake] - a[kStDeep] - a[kStRem]);
      const std::int64_t cycles = std::max<std::int64_t>(1, std::llround(static_cast<double>(units) / 180.0));
      std::vector<std::pair<int, std::int64_t>> seg;  // stage, 30-s units
      auto push = [&](int stage, std::int64_t len) {
        if (len <= 0) return;
        if (!seg.empty() && seg.back().first == stage) {
          seg.back().second += len;
        } else {
          seg.emplace_back(stage, len);
        }
      };
      for (std::int64_t c = 0; c < cycles; ++c) {
        std::array<std::int64_t, 4> chunk{};
        for (int st = 0; st < 4; ++st) chunk[st] = a[st] / cycles + (c < a[st] % cycles ? 1 : 0);
        push(kStLight, chunk[kStLight] / 2);
        push(kStDeep, chunk[kStDeep]);
        push(kStLight, chunk[kStLight] - chunk[kStLight] / 2);
        push(kStRem, chunk[kStRem]);
        push(kStAwake, chunk[kStAwake]);
      }
      if (unknown && seg.size() >= 2) {
        const auto pos = 1 + static_cast<std::size_t>(unknown_pos * static_cast<double>(seg.size() - 1));
        seg.insert(seg.begin() + static_cast<std::ptrdiff_t>(pos), {kStUnknown, unknown_units});
      }
      // No stage share of the night may be an exact rounding tie (see the top).
      for (int iter = 0; iter < 1000; ++iter) {
        std::array<std::int64_t, 4> sec{};
        std::int64_t total = 0;
        for (const auto& [stage, len] : seg) {
          if (stage == kStUnknown) continue;
          sec[stage] += 30 * len;
          total += 30 * len;
        }
        bool tie = false;
        for (int st = 0; st < 4; ++st) tie = tie || is_tie(100 * sec[st], total, 100);
        if (!tie) break;
        for (auto it = seg.rbegin(); it != seg.rend(); ++it) {
          if (it->first != kStUnknown) {
            it->second += 1;
            break;
          }
        }
      }
      std::int64_t t = from_local(s.zone, bedtime_local);
      for (const auto& [stage, len] : seg) {
        s.sleep.push_back({stage, t, t + 30 * len});
        t += 30 * len;
      }
    }
  }

  double step_rate(const Subject& s, std::int64_t local) const {
    const auto [k, sod] = local_day(s, local);
    const std::int64_t hour = sod / kHourSec;
    if (hour >= 8 && hour <= 20 && in_days(k)) {
      return s.days[static_cast<std::size_t>(k)].steps[static_cast<std::size_t>(hour - 8)];
    }
    if (hour == 6 || hour == 7 || hour == 21) return 0.5 * s.p.steps_rate;
    if (hour >= 22) return 0.15 * s.p.steps_rate;
    return 0.03 * s.p.steps_rate;
  }

  void make_activity(Subject& s, Rng& r) {
    std::vector<Gap> gaps = s.charging;
    gaps.insert(gaps.end(), s.step_gaps.begin(), s.step_gaps.end());
    std::int64_t prev = s.garmin_start;
    while (true) {
      const std::int64_t dt = 45 + static_cast<std::int64_t>(r.below(31));
      const std::int64_t t = prev + dt;
      if (t > s.garmin_end) break;
      if (const Gap* g = overlapping(gaps, prev, t)) {
        prev = g->end;  // the first record after the gap starts afresh
        continue;
      }
      Activity a;
      a.start = prev;
      a.end = t;
      a.local_end = to_local(s.zone, t);
      const double rate = step_rate(s, a.local_end);
      const double q = std::clamp(rate / 50.0, 0.03, 0.9);
      if (r.bernoulli(0.03)) {
        a.form = 'e';
        a.name = kUnknownType;
      } else if (r.bernoulli(q)) {
        const double expected = rate * static_cast<double>(dt) / 60.0 / q;
        a.steps = static_cast<int>(std::max(1L, std::lround(expected * std::exp(r.normal(-0.045, 0.3)))));
        a.name = r.bernoulli(0.15) ? kGeneric : kWalking;
        a.form = r.bernoulli(0.04) ? 's' : 'n';
      } else {
        a.steps = 0;
        a.name = kSedentary;
      }
      a.pilot = r.bernoulli(0.0003) || (quirks() && s.index == 1 && s.activity.size() == 10);
      s.activity.push_back(a);
      prev = t;
    }
  }

  // The candidate windows of each date (k, H) and the records they hold.
  void index_windows(Subject& s) {
    const auto n_dates = static_cast<std::size_t>(days_ + 1);
    s.windows.assign(n_dates * kWinPerDay, Window{});
    s.cgm_date.assign(n_dates, false);
    auto window_at = [&](std::int64_t k, std::int64_t hour) -> Window* {
      if (!in_days(k) || hour < kFirstHour || hour > kLastHour) return nullptr;
      return &s.windows[static_cast<std::size_t>(k) * kWinPerDay +
                        static_cast<std::size_t>(hour - kFirstHour)];
    };
    for (std::size_t j = 0; j < s.cgm.size(); ++j) {
      const auto [k, sod] = local_day(s, s.cgm[j].local);
      if (in_days(k)) s.cgm_date[static_cast<std::size_t>(k)] = true;
      const std::int64_t hour = sod / kHourSec;  // local in [H, H + 2h) for H = hour - 1, hour
      for (std::int64_t h : {hour - 1, hour})
        if (Window* w = window_at(k, h)) w->cgm.push_back(j);
    }
    for (std::size_t j = 0; j < s.activity.size(); ++j) {
      if (s.activity[j].form == 'e') continue;
      const auto [k, sod] = local_day(s, s.activity[j].local_end);
      const std::int64_t up = (sod + kHourSec - 1) / kHourSec;  // end in (H, H + 2h] for H = up - 2, up - 1
      if (sod == 0) continue;                                   // midnight: windows of the day before
      for (std::int64_t h : {up - 2, up - 1})
        if (Window* w = window_at(k, h)) w->activity.push_back(j);
    }
    // Nights: sleep records by the local noon-to-noon day of their start.
    s.sleep_seconds_total.assign(n_dates, 0);
    s.sleep_stage.assign(n_dates, {});
    for (const SleepRecord& rec : s.sleep) {
      if (rec.stage == kStUnknown) continue;
      const std::int64_t local = to_local(s.zone, rec.start);
      const std::int64_t k = floor_div(local + 12 * kHourSec, kDaySec) - s.first_date;
      if (!in_days(k)) continue;
      s.sleep_stage[static_cast<std::size_t>(k)][static_cast<std::size_t>(rec.stage)] += rec.end - rec.start;
      s.sleep_seconds_total[static_cast<std::size_t>(k)] += rec.end - rec.start;
    }
  }

  void window_sums(const Subject& s, const Window& w, long long* glucose, long long* steps,
                   std::int64_t* seconds) const {
    *glucose = 0;
    for (std::size_t j : w.cgm) *glucose += s.cgm[j].value;
    *steps = 0;
    *seconds = 0;
    for (std::size_t j : w.activity) {
      *steps += s.activity[j].steps;
      *seconds += s.activity[j].end - s.activity[j].start;
    }
  }

  // Nudges readings and step values until no window's glucose_mean (0.1) or
  // steps_mean (0.01) is an exact rounding tie.
  void fix_ties(Subject& s) {
    for (int pass = 0;; ++pass) {
      if (pass > 10000) throw Error("synth --raw: could not avoid rounding ties (internal error)");
      bool changed = false;
      for (Window& w : s.windows) {
        long long glucose = 0, steps = 0;
        std::int64_t seconds = 0;
        window_sums(s, w, &glucose, &steps, &seconds);
        const auto n = static_cast<long long>(w.cgm.size());
        if (n > 0 && is_tie(glucose, n, 10)) {
          for (std::size_t j : w.cgm) {
            Cgm& c = s.cgm[j];
            if (c.text == 0 && c.value < kCgmHigh) {
              c.value += 1;
              changed = true;
              break;
            }
          }
        }
        // steps_mean = steps / (seconds / 60) = 60 steps / seconds.
        if (seconds > 0 && is_tie(60 * steps, seconds, 100)) {
          for (std::size_t j : w.activity) {
            if (s.activity[j].steps > 0) {
              s.activity[j].steps += 1;
              changed = true;
              break;
            }
          }
        }
      }
      if (!changed) break;
    }
  }

  // The ground-truth features of every window (the label later) and the score
  // that sets the stress level.
  void compute_features(Subject& s) {
    const bool insulin = kMedications[static_cast<std::size_t>(s.p.group->medication_code)] == "insulin";
    for (std::int64_t k = 0; k <= days_; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      const Day& day = s.days[kk];
      for (int h = 0; h < kWinPerDay; ++h) {
        Window& w = s.windows[kk * kWinPerDay + static_cast<std::size_t>(h)];
        auto& row = w.row;
        // Glucose.
        if (!w.cgm.empty()) {
          long long sum = 0;
          int in_range = 0, hyper = 0, run = 0;
          std::int64_t prev = 0;
          for (std::size_t j : w.cgm) {
            const Cgm& c = s.cgm[j];
            sum += c.value;
            if (c.value >= 70 && c.value <= 180) ++in_range;
            if (c.value > kHyperThreshold) {
              run = (run > 0 && c.utc - prev <= kConsecutiveSec) ? run + 1 : 1;
              if (run == kHyperRun) ++hyper;
            } else {
              run = 0;
            }
            prev = c.utc;
          }
          const auto n = static_cast<double>(w.cgm.size());
          row[kGlucose] = round_to(static_cast<double>(sum) / n, 1);
          row[kTir] = round_to(100.0 * in_range / n, 2);
          row[kHyper] = hyper;
        } else {  // the model's trace of that window
          double sum = 0.0;
          int in_range = 0;
          for (int t = h * 12; t < h * 12 + 24; ++t) {
            sum += day.glucose[static_cast<std::size_t>(t)];
            if (day.glucose[static_cast<std::size_t>(t)] >= 70 &&
                day.glucose[static_cast<std::size_t>(t)] <= 180)
              ++in_range;
          }
          row[kGlucose] = round_to(sum / 24.0, 1);
          row[kTir] = round_to(100.0 * in_range / 24.0, 2);
          row[kHyper] = 0;
        }
        // Steps.
        long long steps = 0;
        std::int64_t seconds = 0;
        for (std::size_t j : w.activity) {
          steps += s.activity[j].steps;
          seconds += s.activity[j].end - s.activity[j].start;
        }
        w.steps = steps;
        w.step_seconds = seconds;
        row[kSteps] = seconds > 0
                          ? round_to(static_cast<double>(steps) / (static_cast<double>(seconds) / 60.0), 2)
                          : round_to(0.5 * (day.steps[static_cast<std::size_t>(h)] +
                                            day.steps[static_cast<std::size_t>(h + 1)]),
                                     2);
        // Sleep (the night before the date).
        const std::int64_t total = s.sleep_seconds_total[kk];
        for (int st = 0; st < 4; ++st) {
          row[kAwake + static_cast<std::size_t>(st)] =
              total > 0
                  ? round_to(100.0 * static_cast<double>(s.sleep_stage[kk][static_cast<std::size_t>(st)]) /
                                 static_cast<double>(total),
                             2)
                  : s.nights[kk][static_cast<std::size_t>(st)];
        }
        row[kAge] = s.p.age;
        row[kGender] = 0;  // "not_provided"
        row[kMedication] = s.p.group->medication_code;
        row[kSubgroup] = s.p.group->subgroup_code;
        w.score = stress_score(row[kAwake], row[kDeep], row[kRem], row[kSteps], row[kGlucose], row[kHyper],
                               row[kTir], row[kAge], insulin, s.group);
      }
    }
  }

  double stress_level(const Subject& s, const std::vector<double>& hour_level, std::int64_t local) const {
    const auto [k, sod] = local_day(s, local);
    const std::int64_t hour = sod / kHourSec;
    if (in_days(k) && hour >= 8 && hour <= 20) {
      return hour_level[static_cast<std::size_t>(k) * 13 + static_cast<std::size_t>(hour - 8)];
    }
    return (hour >= 22 || hour < 6) ? 25.0 : 30.0;
  }

  void make_stress(Subject& s, Rng& r) {
    // Hourly levels of hours 08..20 from the scores of the windows holding them.
    std::vector<double> hour_level(static_cast<std::size_t>(days_ + 1) * 13);
    const double logit75 = std::log(3.0);
    for (std::int64_t k = 0; k <= days_; ++k) {
      for (int hour = 8; hour <= 20; ++hour) {
        double sum = 0.0;
        int n = 0;
        for (int start : {hour - 1, hour}) {
          if (start < kFirstHour || start > kLastHour) continue;
          sum += s.windows[static_cast<std::size_t>(k) * kWinPerDay +
                           static_cast<std::size_t>(start - kFirstHour)]
                     .score;
          ++n;
        }
        const double latent = sum / n + s.p.trait + o_.synth.label_noise * r.normal();
        hour_level[static_cast<std::size_t>(k) * 13 + static_cast<std::size_t>(hour - 8)] =
            100.0 / (1.0 + std::exp(-((latent - kStressCentre) / kStressSlope + logit75)));
      }
    }
    std::int64_t prev = s.garmin_start + static_cast<std::int64_t>(r.below(120));
    while (true) {
      const std::int64_t t = prev + 120 + static_cast<std::int64_t>(r.below(61));
      if (t > s.garmin_end) break;
      if (const Gap* g = overlapping(s.charging, t - 1, t)) {
        prev = g->end;
        continue;
      }
      Stress rec;
      rec.utc = t;
      rec.local = to_local(s.zone, t);
      const double level = stress_level(s, hour_level, rec.local);
      rec.value = static_cast<int>(std::clamp(std::lround(level + r.normal(0.0, 9.0)), 0L, 100L));
      if (r.bernoulli(0.05)) rec.value = r.bernoulli(0.5) ? -1 : -2;
      s.stress.push_back(rec);
      prev = t;
    }
  }

  void finish_windows(Subject& s) {
    for (const Stress& rec : s.stress) {
      if (rec.value < 0) continue;
      const auto [k, sod] = local_day(s, rec.local);
      const std::int64_t hour = sod / kHourSec;
      for (std::int64_t h : {hour - 1, hour}) {
        if (!in_days(k) || h < kFirstHour || h > kLastHour) continue;
        Window& w =
            s.windows[static_cast<std::size_t>(k) * kWinPerDay + static_cast<std::size_t>(h - kFirstHour)];
        w.stress_valid += 1;
        w.stress_sum += rec.value;
      }
    }
    for (std::int64_t k = 0; k <= days_; ++k) {
      for (int h = 0; h < kWinPerDay; ++h) {
        Window& w = s.windows[static_cast<std::size_t>(k) * kWinPerDay + static_cast<std::size_t>(h)];
        w.label = w.stress_valid > 0 &&
                  static_cast<double>(w.stress_sum) / static_cast<double>(w.stress_valid) > kStressThreshold;
        if (static_cast<int>(w.cgm.size()) < kMinCgm) {
          w.drop = "cgm";
        } else if (w.stress_valid < kMinStress) {
          w.drop = "stress";
        } else if (w.step_seconds < kMinActivitySec) {
          w.drop = "steps";
        } else if (s.sleep_seconds_total[static_cast<std::size_t>(k)] < kMinSleepSec) {
          w.drop = "sleep";
        }
      }
    }
  }

  const RawSynthOptions& o_;
  std::size_t n_;
  int days_;
};

// ---- writers -----------------------------------------------------------------

struct Paths {
  std::string cgm, sleep, stress, activity;  // relative to the dataset root, no leading '/'
};

Paths paths_of(const std::string& id) {
  Paths p;
  p.cgm = "wearable_blood_glucose/continuous_glucose_monitoring/dexcom_g6/" + id + "/" + id + "_DEX.json";
  p.sleep = "wearable_activity_monitor/sleep/garmin_vivosmart5/" + id + "/" + id + "_sleep.json";
  p.stress = "wearable_activity_monitor/stress/garmin_vivosmart5/" + id + "/" + id + "_stress.json";
  p.activity =
      "wearable_activity_monitor/physical_activity/garmin_vivosmart5/" + id + "/" + id + "_activity.json";
  return p;
}

void garmin_header(std::string& b, const Subject& s, bool v3, const char* ns, const char* name,
                   const char* version, std::int64_t created) {
  b += "{\"header\":{\"uuid\":\"AIREADI-" + s.id + "\",\"creation_date_time\":\"";
  append_timestamp(b, created, false);
  b += "\",\"user_id\":\"AIREADI-" + s.id + "\",\"schema_id\":{\"namespace\":\"";
  b += ns;
  b += "\",\"name\":\"";
  b += name;
  b += "\",\"version\":\"";
  b += version;
  b += "\"}";
  if (v3) {
    b += ",\"timezone\":\"";
    b += s.tz;
    b += '"';
  }
  b += "},\"body\":{";
}

void write_cgm(const fs::path& root, const Subject& s, bool v3, std::int64_t created,
               RawSynthSummary& summary) {
  OutFile f(root / paths_of(s.id).cgm, summary);
  std::string& b = f.buf();
  b += "{\"header\":{\"uuid\":\"AIREADI-" + s.id + "\",\"creation_date_time\":\"";
  append_timestamp(b, created, false);
  b += "\",\"patient_id\":\"AIREADI-" + s.id +
       "\",\"schema_id\":{\"namespace\":\"omh\",\"name\":\"blood-glucose\",\"version\":3.0},"
       "\"modality\":\"sensed\",\"acquistion_rate\":{\"number_of_times\":1,\"time_window\":{\"value\":5,"
       "\"unit\":\"min\"}},\"external_datasheets\":{\"datasheet_type\":\"source_device\","
       "\"datasheet_reference\":\"iri-of-cgm-device\"}";
  if (v3) {
    b += ",\"timezone\":\"";
    b += s.tz;
    b += '"';
  }
  b += "},\"body\":{\"cgm\":[";
  for (std::size_t j = 0; j < s.cgm.size(); ++j) {
    const Cgm& c = s.cgm[j];
    if (j) b += ',';
    b += "{\"effective_time_frame\":{\"time_interval\":{\"start_date_time\":\"";
    append_timestamp(b, c.utc, false);
    b += "\",\"end_date_time\":\"";
    append_timestamp(b, c.utc, false);
    b += "\"}},\"event_type\":\"EGV\",\"source_device_id\":\"" + s.device_id +
         "\",\"blood_glucose\":{\"unit\":\"mg/dL\",\"value\":";
    if (c.text == 'L') {
      b += "\"Low\"";
    } else if (c.text == 'H') {
      b += "\"High\"";
    } else {
      b += std::to_string(c.value);
    }
    b += "},\"transmitter_time\":{\"unit\":\"long integer\",\"value\":" +
         std::to_string(c.utc - s.transmitter_start) + "},\"transmitter_id\":\"" + s.transmitter_id + "\"}";
    f.maybe_flush();
  }
  b += "]}}\n";
  f.close();
}

void write_sleep(const fs::path& root, const Subject& s, bool v3, std::int64_t created,
                 RawSynthSummary& summary) {
  OutFile f(root / paths_of(s.id).sleep, summary);
  std::string& b = f.buf();
  garmin_header(b, s, v3, "omh", "sleep-stages", "2.0", created);
  b += "\"sleep\":[";
  const char* key = v3 ? "effective_time_frame" : "sleep_stage_time_frame";
  for (std::size_t j = 0; j < s.sleep.size(); ++j) {
    const SleepRecord& rec = s.sleep[j];
    if (j) b += ',';
    b += "{\"sleep_stage_state\":\"";
    b += kStageNames[rec.stage];
    b += "\",\"";
    b += key;
    b += "\":{\"time_interval\":{\"start_date_time\":\"";
    append_timestamp(b, rec.start, false);
    b += "\",\"end_date_time\":\"";
    append_timestamp(b, rec.end, false);
    b += "\"}}}";
    f.maybe_flush();
  }
  b += "]}}\n";
  f.close();
}

void write_stress(const fs::path& root, const Subject& s, bool v3, std::int64_t created,
                  RawSynthSummary& summary) {
  OutFile f(root / paths_of(s.id).stress, summary);
  std::string& b = f.buf();
  garmin_header(b, s, v3, "", "", "", created);
  b += "\"stress\":[";
  for (std::size_t j = 0; j < s.stress.size(); ++j) {
    if (j) b += ',';
    b += "{\"stress\":{\"value\":" + std::to_string(s.stress[j].value) +
         ",\"unit\":\"stress level\"},\"effective_time_frame\":{\"date_time\":\"";
    append_timestamp(b, s.stress[j].utc, false);
    b += "\"}}";
    f.maybe_flush();
  }
  b += "]}}\n";
  f.close();
}

void write_activity(const fs::path& root, const Subject& s, bool v3, std::int64_t created,
                    RawSynthSummary& summary) {
  OutFile f(root / paths_of(s.id).activity, summary);
  std::string& b = f.buf();
  garmin_header(b, s, v3, "omh", "physical-activity", "1.2", created);
  b += "\"activity\":[";
  for (std::size_t j = 0; j < s.activity.size(); ++j) {
    const Activity& a = s.activity[j];
    if (j) b += ',';
    b += "{\"activity_name\":\"";
    b += kActivityNames[a.name];
    b += "\",\"base_movement_quantity\":{\"value\":";
    if (a.form == 'e') {
      b += "\"\"";
    } else if (a.form == 's') {
      b += '"' + std::to_string(a.steps) + '"';
    } else {
      b += std::to_string(a.steps);
    }
    b += ",\"unit\":\"steps\"},\"effective_time_frame\":{\"time_interval\":{\"start_date_time\":\"";
    append_timestamp(b, a.start, a.pilot);
    b += "\",\"end_date_time\":\"";
    append_timestamp(b, a.end, a.pilot);
    b += "\"}}}";
    f.maybe_flush();
  }
  b += "]}}\n";
  f.close();
}

// The manifest and summary columns of one participant.
struct ManifestRows {
  long long number = 0;
  std::string participants, glucose, activity;
};

ManifestRows manifest_rows(const Subject& s) {
  ManifestRows m;
  m.number = s.number;
  const Paths paths = paths_of(s.id);
  m.participants = fmt::format("{}\t{}\t{}\t{}\t{}\t{}", s.id, kSites[s.site],
                               kSubgroups[static_cast<std::size_t>(s.p.group->subgroup_code)],
                               static_cast<long>(s.p.age), date_text(s.first_date), s.split);
  for (bool d : s.datatypes) m.participants += d ? "\tTRUE" : "\tFALSE";

  double glucose_sum = 0.0;
  for (const Cgm& c : s.cgm) glucose_sum += c.value;
  const double cgm_days =
      s.cgm.empty() ? 0.0 : static_cast<double>(s.cgm.back().utc - s.cgm.front().utc) / kDaySec;
  m.glucose = fmt::format("{}\t/{}\t{}\t{:.1f}\t{:.1f}\t{}\tDexcom\tG6", s.id, paths.cgm, s.cgm.size(),
                          s.cgm.empty() ? 0.0 : glucose_sum / static_cast<double>(s.cgm.size()), cgm_days,
                          s.transmitter_id);

  const std::string none3 = "None\tNone\tNone";
  if (!s.garmin) {
    m.activity = s.id + "\t" + s.wrist + "\t" + s.hand;
    for (int k = 0; k < 7; ++k) m.activity += "\t" + none3;
    m.activity += "\tNone\tGarmin\tVivosmart 5";
    return m;
  }
  long long stress_sum = 0, stress_n = 0;
  for (const Stress& rec : s.stress)
    if (rec.value >= 0) {
      stress_sum += rec.value;
      ++stress_n;
    }
  std::int64_t sleep_seconds = 0;
  std::vector<std::int64_t> nights;
  for (const SleepRecord& rec : s.sleep) {
    if (rec.stage == kStUnknown) continue;
    sleep_seconds += rec.end - rec.start;
    nights.push_back(floor_div(to_local(s.zone, rec.start) + 12 * kHourSec, kDaySec));
  }
  std::sort(nights.begin(), nights.end());
  nights.erase(std::unique(nights.begin(), nights.end()), nights.end());
  long long steps = 0;
  std::vector<std::int64_t> step_days;
  for (const Activity& a : s.activity) {
    steps += a.steps;
    step_days.push_back(floor_div(a.local_end, kDaySec));
  }
  std::sort(step_days.begin(), step_days.end());
  step_days.erase(std::unique(step_days.begin(), step_days.end()), step_days.end());
  const double worn_days = static_cast<double>(s.garmin_end - s.garmin_start) / kDaySec;
  m.activity = fmt::format(
      "{}\t{}\t{}\t{}\t/{}\t{}\t{:.1f}\t/{}\t{}\t{:.2f}\t{}\t/{}\t{}\t{:.0f}\t{}\t{:.1f}\tGarmin\tVivosmart "
      "5",
      s.id, s.wrist, s.hand, none3 + "\t" + none3, paths.stress, s.stress.size(),
      stress_n ? static_cast<double>(stress_sum) / static_cast<double>(stress_n) : 0.0, paths.sleep,
      s.sleep.size(),
      nights.empty() ? 0.0 : static_cast<double>(sleep_seconds) / 3600.0 / static_cast<double>(nights.size()),
      none3, paths.activity, step_days.size(),
      step_days.empty() ? 0.0 : static_cast<double>(steps) / static_cast<double>(step_days.size()), none3,
      worn_days);
  return m;
}

void write_text(const fs::path& path, const std::string& text, RawSynthSummary& summary) {
  OutFile f(path, summary);
  f.buf() = text;
  f.close();
}

}  // namespace

const char* raw_v3_folder() { return "5f3c9a2e-8d41-4b7a-9c06-2e1f7d4b8a93"; }

RawSynthSummary write_raw_cohort(const RawSynthOptions& options, const std::string& dir) {
  if (options.synth.n_participants < 1) {
    throw UsageError(
        fmt::format("synth --raw: need at least 1 participant, got {}", options.synth.n_participants));
  }
  if (options.days < 1 || options.days > 60) {
    throw UsageError(fmt::format("synth.days must be in 1..60, got {}", options.days));
  }
  if (options.format != "v2" && options.format != "v3") {
    throw UsageError(fmt::format("synth.format must be v2 or v3, got '{}'", options.format));
  }
  if (!(options.synth.label_noise >= 0.0) || !std::isfinite(options.synth.label_noise)) {
    throw UsageError(fmt::format("synth.label_noise must be >= 0, got {}", options.synth.label_noise));
  }
  if (dir.empty()) throw UsageError("synth --raw: the output folder is empty");
  const bool v3 = options.format == "v3";
  const fs::path top(dir);
  const fs::path root = v3 ? top / raw_v3_folder() / "dataset" : top;
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw Error("synth --raw: cannot create '" + root.string() + "': " + ec.message());

  RawSynthSummary summary;
  summary.dataset_root = root.string();
  const auto n = static_cast<std::size_t>(options.synth.n_participants);
  const std::vector<std::string> ids = participant_ids(options.synth.seed, n);
  Generator gen(options, n);

  struct Done {
    ManifestRows manifest;
    std::vector<std::array<double, 12>> rows;
    std::vector<int> labels;
    std::string windows_csv;
    std::string id;
  };
  std::vector<Done> done;
  done.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Subject s = gen.make(i, ids[i]);
    const std::int64_t created = s.cgm_end + 30 * kDaySec;
    write_cgm(root, s, v3, created, summary);
    Done d;
    d.id = s.id;
    if (s.garmin) {
      write_sleep(root, s, v3, created, summary);
      write_stress(root, s, v3, created, summary);
      write_activity(root, s, v3, created, summary);
    }
    // Every candidate window (a participant without a watch: all dropped).
    for (std::int64_t k = 0; k <= options.days; ++k) {
      if (!s.cgm_date[static_cast<std::size_t>(k)]) continue;
      for (int h = 0; h < kWinPerDay; ++h) {
        const Window& w = s.windows[static_cast<std::size_t>(k) * kWinPerDay + static_cast<std::size_t>(h)];
        const std::int64_t start = (s.first_date + k) * kDaySec + (kFirstHour + h) * kHourSec;
        d.windows_csv += fmt::format("{},{},{},{},{},{}\n", s.id, format_minutes(start), w.cgm.size(),
                                     w.stress_valid, static_cast<double>(w.step_seconds) / 60.0, w.drop);
        if (*w.drop) {
          ++summary.windows_dropped;
        } else {
          d.rows.push_back(w.row);
          d.labels.push_back(w.label);
        }
      }
    }
    d.manifest = manifest_rows(s);
    done.push_back(std::move(d));
  }
  std::sort(done.begin(), done.end(),
            [](const Done& a, const Done& b) { return a.manifest.number < b.manifest.number; });

  const std::string id_column = v3 ? "person_id" : "participant_id";
  std::string participants =
      id_column + "\tclinical_site\tstudy_group\tage\tstudy_visit_date\trecommended_split";
  for (const char* d : kDatatypes) participants += std::string("\t") + d;
  participants += '\n';
  std::string glucose = id_column +
                        "\tglucose_filepath\tglucose_level_record_count\taverage_glucose_level_mg_dl\t"
                        "glucose_sensor_sampling_duration_days\tglucose_sensor_id\tmanufacturer\t"
                        "manufacturer_model_name\n";
  std::string activity =
      id_column +
      "\twrist_worn_on\tdominant_hand\theartrate_filepath\theartrate_record_count\taverage_heartrate_bpm\t"
      "oxygen_saturation_filepath\toxygen_saturation_record_count\taverage_oxygen_saturation_pct\t"
      "stress_level_filepath\tstress_level_record_count\taverage_stress_level\tsleep_filepath\t"
      "sleep_record_count\taverage_sleep_hours\trespiratory_rate_filepath\trespiratory_rate_record_count\t"
      "average_respiratory_rate_bpm\tphysical_activity_filepath\tphysical_activity_num_days\t"
      "average_daily_activity\tactive_calories_filepath\tactive_calories_record_count\t"
      "average_active_calories_kcal\tsensor_sampling_duration_days\tmanufacturer\tmanufacturer_model_name\n";
  std::string windows = "participant_id,start,cgm_readings,stress_readings,activity_minutes,drop_reason\n";
  Dataset truth;
  truth.schema = make_schema();
  truth.schema.features[kGender].categories = {"not_provided"};
  truth.source = fmt::format("synthetic raw AI-READI {} (participants={}, days={}, seed={})", options.format,
                             options.synth.n_participants, options.days, options.synth.seed);
  std::size_t n_rows = 0;
  for (const Done& d : done) n_rows += d.rows.size();
  truth.x = Matrix(n_rows, kNumCols);
  std::size_t r = 0;
  for (const Done& d : done) {
    participants += d.manifest.participants + '\n';
    glucose += d.manifest.glucose + '\n';
    activity += d.manifest.activity + '\n';
    windows += d.windows_csv;
    for (std::size_t k = 0; k < d.rows.size(); ++k, ++r) {
      std::copy(d.rows[k].begin(), d.rows[k].end(), truth.x.row(r));
      truth.y.push_back(d.labels[k]);
      truth.group.push_back(d.id);
      summary.positives += static_cast<std::size_t>(d.labels[k]);
    }
  }
  summary.windows_kept = n_rows;
  summary.participants = n;
  write_text(root / "participants.tsv", participants, summary);
  write_text(root / "wearable_blood_glucose" / "manifest.tsv", glucose, summary);
  write_text(root / "wearable_activity_monitor" / "manifest.tsv", activity, summary);
  write_text(top / "ground_truth.windows.csv", windows, summary);
  const fs::path truth_path = top / "ground_truth.csv";
  write_csv(truth, truth_path.string());
  summary.files += 1;
  summary.bytes += static_cast<std::size_t>(fs::file_size(truth_path, ec));
  return summary;
}

}  // namespace sensecf::data
