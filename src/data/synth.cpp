// Synthetic AI-READI-like cohort: participants, nights, 2-hour CGM/activity
// windows, and a high-stress label from a documented ground-truth model.
//
// What it simulates, per participant (all draws from sensecf::Rng streams
// derived from the seed, one stream per participant, so adding participants
// does not change the earlier ones):
//   - clinical site (UW 1xxx, UCSD 4xxx, UAB 7xxx) and a 4-digit id;
//   - study group with AI-READI-like shares (healthy 33%, pre-diabetes 26%,
//     oral/non-insulin 29%, insulin 12%); medication follows the study group:
//       healthy, pre_diabetes_lifestyle_controlled               -> "no_medication"
//         (not "none": CSV readers, ours included, read "none" as missing)
//       oral_medication_and_or_non_insulin_injectable_...        -> "oral"
//         (oral agents and/or non-insulin injectables such as GLP-1RA)
//       insulin_dependent                                        -> "insulin";
//   - gender (55% female), age >= 40 (mean ~61, sd ~11, integer years);
//   - participant random effects: mean glucose (group mean/sd of aireadi.md §4,
//     log-normal), glycaemic variability, meal-response size, daily steps
//     (log-normal, group- and age-dependent), sleep-stage propensities, and an
//     unobserved stress trait.
// Windows are daytime 2-hour windows with a 1-hour stride (50% overlap):
// 12 per day (08:00-10:00 ... 19:00-21:00), so W windows span ceil(W/12) days.
// Each day has its own previous night (sleep-stage shares: log-normal
// propensities normalised to 100%), its own hourly step rates (heavy right tail;
// a window's steps_mean is the mean of its two hours) and a 5-minute CGM trace
// (log-space AR(1) slow + fast components, meal responses, exercise lowering
// glucose). From the 24 readings of a window: glucose_mean, tir_pct (% of
// readings in 70-180 mg/dL) and hyper_events (runs of >= 3 consecutive readings,
// i.e. >= 15 min, above 180 mg/dL), exactly as the preprocessing of aireadi.md §3.
//
// Ground-truth stress model (sp(z) = ln(1 + e^z), softplus: a smooth threshold;
// sg(z) = 1 / (1 + e^-z), logistic):
//   sleep    = sp((16 - deep)/3) + 0.8 sp((19 - rem)/3) + 0.8 sp((awake - 8)/2)
//   activity = sp(1.5 ln(6 / (steps + 0.5)))                 (low activity hurts)
//   hyperg   = sp((glucose - 150)/20)
//   glycemia = hyperg + 0.6 o^2 / (1 + o) + 0.5 sqrt(hyper_events),  o = (100 - tir)/25
//   load     = sleep + activity + glycemia
//              + 0.6 sleep * hyperg                          (poor sleep x hyperglycaemia)
//              + 0.4 sleep * activity                        (poor sleep x inactivity)
//   response = (1 - load^(-a)) / a,  a = kSaturation = 0.45  (saturating, like ln(load)
//              for small loads, bounded by 1/a)
//   trigger terms, each a smooth AND of sharp thresholds, in [0, 1]; with
//   [v > c; w] = sg((v - c)/w) and [v < c; w] = sg((c - v)/w):
//     T1  [glucose > 140; 2] [steps < 3.5; 0.2]            hyperglycaemic, sedentary window
//     T2  [awake > 9; 0.3] [deep < 13; 0.4]                fragmented, shallow night
//     T3  [rem < 17.5; 0.4] [glucose > 125; 2]             short REM, elevated glucose
//     T4  [deep < 11.5; 0.4] [steps < 2.8; 0.2]            shallow night, sedentary window
//     T5  [awake > 8; 0.3] [rem < 19; 0.4] [age > 65; 1]   older, fragmented, short REM
//     T6  [hyper_events > 0.5; 0.1] [deep < 15; 0.4]       excursion after a shallow night
//     T7  [tir < 95; 1] [awake > 7; 0.3]                   out of range, wakeful night
//     T8  [steps < 2; 0.2] [age > 66; 1]                   older, sedentary
//     T9  [glucose > 150; 2] [rem < 21; 0.4] [awake > 6; 0.3]
//     T10 [(glucose - 125)/20 + (age - 61)/10 - (steps - 5)/4 > 1; 0.1]   (oblique)
//     T11 [(awake - 6)/2 - (deep - 15)/3 - (rem - 21)/4 > 1.5; 0.1]      (oblique)
//   triggers = sum of the terms that act in the participant's study group (kTriggers):
//     healthy T2 T4 T8 T11; pre-diabetes T1 T3 T5 T7; oral/non-insulin T4 T6 T9 T10;
//     insulin T1 T6 T7 T10
//   score    = kScale * (response + 0.005 (age - 61) + 0.3 [medication = insulin])
//              + kTrigger * triggers - kCentre
//              with kScale = 0.7, kTrigger = 2.5, kCentre = 2.2 (score mean ~0, sd ~2.3)
//   latent   = score + u + eps,  u ~ N(0, 0.25^2) per participant (unobserved trait),
//              eps ~ N(0, label_noise^2) per window (default 2.0)
//   label    = 1 for the round(positive_rate * n) rows with the largest latent
//              (the (1 - positive_rate) quantile threshold), else 0.
// The score is strictly increasing in awake_pct, glucose_mean, hyper_events and age,
// strictly decreasing in deep_pct, rem_pct and steps_mean, and non-increasing in
// tir_pct (strictly below 100): more deep/REM sleep or activity, or lower glucose,
// lowers stress. light_pct and gender do not enter; subgroup (with medication) picks
// the trigger terms. synthetic_stress_score returns `score` computed from a row's
// stored (rounded) feature values.
// Why this shape: most of the signal sits in narrow, group-specific threshold
// interactions at the window level, with little participant-level noise, so the
// classifiers are data-limited and their F1 falls as training rows are removed
// (the paper's Fig. 1), while the full-data NN stays near the paper's baseline.
// Tuning: defaults (300 participants x 12 windows, positive_rate 0.44, label_noise
// 2.0), `sensecf train-clf --model nn` on patient-level 80/20 splits, cohort and
// split seeds 1-4: NN accuracy 0.749, F1 0.672, AUC 0.803 (per seed 0.71-0.79: the
// test set is only ~60 patients). With label_noise 1.6 the same runs give 0.764 /
// 0.706 / 0.824 and a slightly steeper Fig. 1 curve; either way F1 falls only by
// ~0.02-0.05 at a 70% reduction, less than the paper's Fig. 1 suggests.
// The paper's NN baseline (Table IV): 71.8%, F1 0.68, AUC 0.78.
//
// It does not write files (csv.h does) or split the data (split.h does).
#include "sensecf/data/synth.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/random.h"
#include "synth_model.h"

namespace sensecf::data {

void declare_options(Options& options, SynthOptions& synth) {
  options.add("synth.participants", &synth.n_participants, "number of synthetic participants",
              "participants");
  options.add("synth.windows", &synth.windows_per_participant,
              "2-hour windows (50% overlap, 12 per day) per participant");
  options.add("synth.positive_rate", &synth.positive_rate,
              "share of high-stress windows (label 1), in (0, 1)");
  options.add("synth.label_noise", &synth.label_noise,
              "sd of the Gaussian noise added to the latent stress score (0: labels follow the "
              "features and the participant trait only)");
  options.add("synth.seed", &synth.seed, "random seed of the synthetic cohort", "seed");
  options.add_check([&synth] {
    if (synth.n_participants < 10) {
      throw UsageError(fmt::format("synth.participants must be >= 10, got {}", synth.n_participants),
                       "a patient-level 80/20 split needs at least 10 participants");
    }
    if (synth.windows_per_participant < 1) {
      throw UsageError(fmt::format("synth.windows must be >= 1, got {}", synth.windows_per_participant),
                       "e.g. synth.windows = 12 (the default: one day of 2-hour windows)");
    }
    if (!(synth.positive_rate > 0.0 && synth.positive_rate < 1.0)) {
      throw UsageError(fmt::format("synth.positive_rate must be in (0, 1), got {}", synth.positive_rate),
                       "e.g. synth.positive_rate = 0.44 (the default)");
    }
    if (!(synth.label_noise >= 0.0) || !std::isfinite(synth.label_noise)) {
      throw UsageError(fmt::format("synth.label_noise must be >= 0, got {}", synth.label_noise),
                       "e.g. synth.label_noise = 2 (the default), or 0 for noise-free labels");
    }
  });
}

namespace synth_model {

namespace {
double softplus(double z) { return z > 30.0 ? z : std::log1p(std::exp(z)); }
double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }  // logistic
}  // namespace

// The noiseless ground-truth score from feature values (formula at the top).
double stress_score(double awake, double deep, double rem, double steps, double glucose,
                    double hyper, double tir, double age, bool on_insulin, int group) {
  const double sleep = 1.0 * softplus((16.0 - deep) / 3.0) + 0.8 * softplus((19.0 - rem) / 3.0) +
                       0.8 * softplus((awake - 8.0) / 2.0);
  const double activity = softplus(1.5 * std::log(6.0 / (std::max(steps, 0.0) + 0.5)));
  const double high_glucose = softplus((glucose - 150.0) / 20.0);
  const double out_of_range = std::max(0.0, 100.0 - tir) / 25.0;
  const double glycemia = high_glucose + 0.6 * out_of_range * out_of_range / (1.0 + out_of_range) +
                          0.5 * std::sqrt(std::max(hyper, 0.0));
  const double load = sleep + activity + glycemia + 0.6 * sleep * high_glucose +
                      0.4 * sleep * activity;  // > 0
  // Saturating response to the load (Box-Cox with exponent -kSaturation: like ln
  // for small loads, bounded above by 1 / kSaturation).
  const double response = (1.0 - std::pow(load, -kSaturation)) / kSaturation;
  // Trigger terms: smooth ANDs of sharp thresholds (sigmoid widths are small next
  // to the spread of each feature), each in [0, 1]; which ones act depends on the
  // study group (kTriggers).
  auto above = [](double v, double threshold, double width) {
    return sigmoid((v - threshold) / width);
  };
  auto below = [](double v, double threshold, double width) {
    return sigmoid((threshold - v) / width);
  };
  const std::array<double, kNumTriggers> t = {
      above(glucose, 140, 2) * below(steps, 3.5, 0.2),                       // T1
      above(awake, 9, 0.3) * below(deep, 13, 0.4),                           // T2
      below(rem, 17.5, 0.4) * above(glucose, 125, 2),                        // T3
      below(deep, 11.5, 0.4) * below(steps, 2.8, 0.2),                       // T4
      above(awake, 8, 0.3) * below(rem, 19, 0.4) * above(age, 65, 1),        // T5
      above(hyper, 0.5, 0.1) * below(deep, 15, 0.4),                         // T6
      below(tir, 95, 1) * above(awake, 7, 0.3),                              // T7
      below(steps, 2, 0.2) * above(age, 66, 1),                              // T8
      above(glucose, 150, 2) * below(rem, 21, 0.4) * above(awake, 6, 0.3),   // T9
      above((glucose - 125) / 20 + (age - 61) / 10 - (steps - 5) / 4, 1, 0.1),  // T10
      above((awake - 6) / 2 - (deep - 15) / 3 - (rem - 21) / 4, 1.5, 0.1)};     // T11
  double triggers = 0.0;
  for (std::size_t k = 0; k < kNumTriggers; ++k) triggers += kTriggers[static_cast<std::size_t>(group)][k] * t[k];
  return kScale * (response + 0.005 * (age - 61.0) + (on_insulin ? 0.3 : 0.0)) +
         kTrigger * triggers - kCentre;
}

std::string participant_id(int site_digit, int number) {
  // 4-digit AI-READI style (1001, 4038, 7060); numbers past 999 get more digits.
  return fmt::format("{}{:03d}", site_digit, number);
}

std::vector<std::string> participant_ids(std::uint64_t seed, std::size_t n) {
  // Sites in turn (UW, UCSD, UAB), ids numbered per site from 1.
  constexpr std::array<int, 3> kSiteDigits = {1, 4, 7};
  std::array<int, 3> next_number = {1, 1, 1};
  Rng site_rng(derive_seed(seed, "synth.sites"));
  std::vector<std::string> ids;
  ids.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t site = site_rng.below(3);
    ids.push_back(participant_id(kSiteDigits[site], next_number[site]++));
  }
  return ids;
}

std::uint64_t participant_seed(std::uint64_t seed, std::size_t i) {
  return derive_seed(seed, "synth.participant." + std::to_string(i));
}

Participant draw_participant(Rng& rng, const std::string& id) {
  Participant p;
  p.id = id;
  double u = rng.uniform();
  std::size_t g = 0;
  while (g + 1 < kGroups.size() && u >= kGroups[g].share) u -= kGroups[g++].share;
  p.group = &kGroups[g];
  p.gender_code = rng.bernoulli(0.55) ? 0 : 1;
  p.age = std::round(std::clamp(rng.normal(61.0 + p.group->age_shift, 11.0), 40.0, 90.0));

  // Mean glucose: log-normal with the group's mean and between-participant sd.
  const double cv = p.group->glucose_sd / p.group->glucose_mean;
  const double log_sd = std::sqrt(std::log1p(cv * cv));
  p.glucose_mean = std::clamp(
      p.group->glucose_mean * std::exp(rng.normal(-0.5 * log_sd * log_sd, log_sd)), 80.0, 300.0);
  p.variability = std::exp(rng.normal(0.0, 0.2));
  p.meal_amp = p.group->meal_amp * std::exp(rng.normal(0.0, 0.2));

  const double daily = p.group->daily_steps * std::exp(rng.normal(0.0, 0.45)) *
                       std::exp(-0.015 * (p.age - 61.0));
  p.steps_rate = 0.85 * daily / (kHoursPerDay * 60.0);

  // Sleep propensities (log shares), typical night: awake 6, light 57, deep 16, rem 21 %.
  const double shift = p.group->sleep_shift;
  p.sleep_log = {std::log(6.0) + rng.normal(0.0, 0.35) + 0.01 * (p.age - 61.0) + shift,
                 std::log(57.0) + rng.normal(0.0, 0.05),
                 std::log(16.0) + rng.normal(0.0, 0.25) - 0.012 * (p.age - 61.0) - shift,
                 std::log(21.0) + rng.normal(0.0, 0.20)};
  p.trait = rng.normal(0.0, kTraitSd);
  return p;
}

// One night: shares in %, rounded to 0.1 with light as the remainder (sum = 100).
std::array<double, 4> draw_night(Rng& rng, const Participant& p) {
  constexpr std::array<double, 4> kNightSd = {0.35, 0.05, 0.25, 0.20};
  std::array<double, 4> w{};
  double total = 0.0;
  for (int s = 0; s < 4; ++s) {
    w[s] = std::exp(p.sleep_log[s] + rng.normal(0.0, kNightSd[s]));
    total += w[s];
  }
  std::array<double, 4> pct{};
  pct[0] = round_to(100.0 * w[0] / total, 1);
  pct[2] = round_to(100.0 * w[2] / total, 1);
  pct[3] = round_to(100.0 * w[3] / total, 1);
  pct[1] = round_to(100.0 - pct[0] - pct[2] - pct[3], 1);  // sum is 100 up to 1e-13
  return pct;
}

namespace {
// Meal response in log units, t_min minutes after the meal (peak at 50 min).
double meal_response(double t_min) {
  if (t_min <= 0.0) return 0.0;
  const double x = t_min / 50.0;
  return x * std::exp(1.0 - x);
}
}  // namespace

Day simulate_day(Rng& rng, const Participant& p) {
  Day day;
  const double day_activity = std::exp(rng.normal(0.0, 0.25));
  for (int h = 0; h < kHoursPerDay; ++h) {
    constexpr double kHourSd = 0.9;
    day.steps[h] = std::min(180.0, p.steps_rate * day_activity * kStepProfile[h] *
                                       std::exp(rng.normal(-0.5 * kHourSd * kHourSd, kHourSd)));
  }

  // Meals (hours of day) and their sizes.
  const std::array<double, 3> meal_hour = {7.5 + rng.uniform(-0.5, 0.5),
                                           12.5 + rng.uniform(-0.75, 0.75),
                                           18.5 + rng.uniform(-0.75, 0.75)};
  std::array<double, 3> meal_size{};
  for (auto& m : meal_size) m = p.meal_amp * std::exp(rng.normal(0.0, 0.25));

  const int n = kHoursPerDay * kReadingsPerHour;
  const double sd_slow = p.group->log_sd_slow * p.variability;
  const double sd_fast = p.group->log_sd_fast * p.variability;
  constexpr double kPhiSlow = 0.97;  // ~3 h time constant at 5-min steps
  constexpr double kPhiFast = 0.70;
  const double day_level = rng.normal(0.0, 0.04);
  double slow = rng.normal(0.0, sd_slow);
  double fast = rng.normal(0.0, sd_fast);

  std::vector<double> log_dev(n);
  for (int t = -kBurnInReadings; t < n; ++t) {
    slow = kPhiSlow * slow + std::sqrt(1.0 - kPhiSlow * kPhiSlow) * rng.normal(0.0, sd_slow);
    fast = kPhiFast * fast + std::sqrt(1.0 - kPhiFast * kPhiFast) * rng.normal(0.0, sd_fast);
    if (t < 0) continue;
    const double hour = kDayStartHour + t / static_cast<double>(kReadingsPerHour);
    double meal = 0.0;
    for (int m = 0; m < 3; ++m) meal += meal_size[m] * meal_response((hour - meal_hour[m]) * 60.0);
    const double exercise = -0.003 * day.steps[t / kReadingsPerHour];
    log_dev[t] = slow + fast + meal + exercise;
  }
  // Centre so that the day's mean glucose stays near the participant's mean.
  double mean_exp = 0.0;
  for (double v : log_dev) mean_exp += std::exp(v);
  mean_exp /= n;
  day.glucose.resize(n);
  for (int t = 0; t < n; ++t) {
    day.glucose[t] = std::clamp(p.glucose_mean * std::exp(day_level + log_dev[t]) / mean_exp, 40.0,
                                400.0);
  }
  return day;
}

Schema make_schema() { return cohort_schema(kGenders); }

namespace {
// Fills the glucose features of one window from its 24 readings.
void window_glucose(const std::vector<double>& g, int first, double* row) {
  double sum = 0.0;
  int in_range = 0;
  int hyper = 0;
  int run = 0;
  for (int t = first; t < first + kReadingsPerWindow; ++t) {
    sum += g[t];
    if (g[t] >= 70.0 && g[t] <= 180.0) ++in_range;
    if (g[t] > 180.0) {
      if (++run == 3) ++hyper;  // a run counts once it lasts >= 15 min
    } else {
      run = 0;
    }
  }
  row[kGlucose] = round_to(sum / kReadingsPerWindow, 1);
  row[kHyper] = hyper;
  row[kTir] = round_to(100.0 * in_range / kReadingsPerWindow, 2);
}
}  // namespace

}  // namespace synth_model

using namespace synth_model;

Schema cohort_schema(const std::vector<std::string>& genders) {
  Schema schema;
  schema.label = "high_stress";
  schema.group = "participant_id";
  auto continuous = [&](const char* name, const char* unit, bool immutable) {
    Feature f;
    f.name = name;
    f.unit = unit;
    f.immutable = immutable;
    schema.features.push_back(std::move(f));
  };
  auto categorical = [&](const char* name, const std::vector<std::string>& categories) {
    Feature f;
    f.name = name;
    f.kind = FeatureKind::kCategorical;
    f.immutable = true;
    f.categories = categories;
    schema.features.push_back(std::move(f));
  };
  continuous("awake_pct", "%", false);
  continuous("light_pct", "%", false);
  continuous("deep_pct", "%", false);
  continuous("rem_pct", "%", false);
  continuous("steps_mean", "steps/min", false);
  continuous("glucose_mean", "mg/dL", false);
  continuous("hyper_events", "count", false);
  continuous("tir_pct", "%", false);
  continuous("age", "years", true);
  categorical("gender", genders);
  categorical("medication", synth_model::kMedications);
  categorical("subgroup", synth_model::kSubgroups);
  return schema;
}

std::string medication_of_study_group(const std::string& study_group) {
  for (const auto& g : synth_model::kGroups) {
    if (synth_model::kSubgroups[static_cast<std::size_t>(g.subgroup_code)] == study_group)
      return synth_model::kMedications[static_cast<std::size_t>(g.medication_code)];
  }
  return "";
}

Dataset make_synthetic_cohort(const SynthOptions& options) {
  if (options.n_participants < 1 || options.windows_per_participant < 1 ||
      !(options.positive_rate > 0.0 && options.positive_rate < 1.0) || !(options.label_noise >= 0.0)) {
    throw UsageError(
        fmt::format("synthetic cohort: need participants >= 1, windows >= 1, 0 < positive_rate < 1 and "
                    "label_noise >= 0; got {}, {}, {}, {}",
                    options.n_participants, options.windows_per_participant, options.positive_rate,
                    options.label_noise),
        "the defaults are synth.participants = 300, synth.windows = 12, synth.positive_rate = 0.44 and "
        "synth.label_noise = 2");
  }
  const auto n_participants = static_cast<std::size_t>(options.n_participants);
  const auto n_windows = static_cast<std::size_t>(options.windows_per_participant);
  const std::size_t n_rows = n_participants * n_windows;

  Dataset data;
  data.schema = make_schema();
  data.source = fmt::format("synthetic(participants={}, windows={}, seed={})",
                            options.n_participants, options.windows_per_participant, options.seed);
  data.x = Matrix(n_rows, kNumCols);
  data.y.assign(n_rows, 0);
  data.group.reserve(n_rows);
  std::vector<double> trait(n_rows, 0.0);

  const std::vector<std::string> ids = participant_ids(options.seed, n_participants);

  std::size_t r = 0;
  for (std::size_t i = 0; i < n_participants; ++i) {
    const std::string& id = ids[i];
    Rng rng(participant_seed(options.seed, i));
    const Participant p = draw_participant(rng, id);

    std::array<double, 4> night{};
    Day day;
    for (std::size_t w = 0; w < n_windows; ++w) {
      const int slot = static_cast<int>(w % kWindowsPerDay);
      if (slot == 0) {
        night = draw_night(rng, p);
        day = simulate_day(rng, p);
      }
      double* row = data.x.row(r);
      for (int s = 0; s < 4; ++s) row[kAwake + s] = night[s];
      row[kSteps] = round_to(0.5 * (day.steps[slot] + day.steps[slot + 1]), 2);
      window_glucose(day.glucose, slot * kReadingsPerHour, row);
      row[kAge] = p.age;
      row[kGender] = p.gender_code;
      row[kMedication] = p.group->medication_code;
      row[kSubgroup] = p.group->subgroup_code;
      data.group.push_back(p.id);
      trait[r] = p.trait;
      ++r;
    }
  }

  // Labels: the round(positive_rate * n) largest latent scores are positive.
  Rng noise_rng(derive_seed(options.seed, "synth.label_noise"));
  std::vector<double> latent(n_rows);
  for (std::size_t i = 0; i < n_rows; ++i) {
    latent[i] = synthetic_stress_score(data, i) + trait[i] + options.label_noise * noise_rng.normal();
  }
  std::vector<std::size_t> order(n_rows);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return latent[a] > latent[b]; });
  long long n_positive = std::llround(options.positive_rate * static_cast<double>(n_rows));
  if (n_rows >= 2) {  // keep both classes present
    n_positive = std::clamp(n_positive, 1LL, static_cast<long long>(n_rows) - 1);
  }
  for (std::size_t k = 0; k < static_cast<std::size_t>(n_positive) && k < n_rows; ++k) {
    data.y[order[k]] = 1;
  }

  std::vector<std::size_t> all(n_rows);
  std::iota(all.begin(), all.end(), std::size_t{0});
  data.schema.learn_bounds(data.x, all);
  return data;
}

double synthetic_stress_score(const Dataset& data, std::size_t row) {
  if (row >= data.x.n_rows) {
    throw Error(fmt::format("synthetic_stress_score: row {} out of range ({} rows)", row,
                            data.x.n_rows));
  }
  const Schema& s = data.schema;
  auto value = [&](const char* name) { return data.x.at(row, s.index_of(name)); };
  const Feature& medication = s.features[s.index_of("medication")];
  const auto code = static_cast<std::size_t>(value("medication"));
  const bool on_insulin = code < medication.categories.size() &&
                          medication.categories[code] == "insulin";
  const Feature& subgroup = s.features[s.index_of("subgroup")];
  const auto sc = static_cast<std::size_t>(value("subgroup"));
  int group = 0;
  if (sc < subgroup.categories.size()) {
    const std::string& name = subgroup.categories[sc];
    for (std::size_t g = 0; g < kGroups.size(); ++g)
      if (kSubgroups[static_cast<std::size_t>(kGroups[g].subgroup_code)] == name) group = static_cast<int>(g);
  }
  return stress_score(value("awake_pct"), value("deep_pct"), value("rem_pct"), value("steps_mean"),
                      value("glucose_mean"), value("hyper_events"), value("tir_pct"), value("age"),
                      on_insulin, group);
}

}  // namespace sensecf::data
