// The generative model of the synthetic cohort (synth.cpp), shared with the raw
// AI-READI file generator (synth_raw.cpp): the study groups, a participant's
// random effects, one night's sleep-stage shares, one day's hourly step rates
// and 5-minute CGM trace, and the ground-truth stress score. Private to
// src/data. The formulas and their rationale are documented at the top of
// synth.cpp.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sensecf/core/random.h"
#include "sensecf/data/dataset.h"

namespace sensecf::data::synth_model {

// Column order of the 12 features.
enum Col : std::size_t {
  kAwake,
  kLight,
  kDeep,
  kRem,
  kSteps,
  kGlucose,
  kHyper,
  kTir,
  kAge,
  kGender,
  kMedication,
  kSubgroup,
  kNumCols
};

// Category lists, sorted: code i is categories[i].
inline const std::vector<std::string> kGenders = {"female", "male"};
inline const std::vector<std::string> kMedications = {"insulin", "no_medication", "oral"};
inline const std::vector<std::string> kSubgroups = {
    "healthy", "insulin_dependent", "oral_medication_and_or_non_insulin_injectable_medication_controlled",
    "pre_diabetes_lifestyle_controlled"};

// Per study group: share of participants, subgroup/medication codes, CGM and
// activity parameters.
struct GroupProfile {
  double share;
  int subgroup_code;
  int medication_code;
  double glucose_mean;  // mg/dL, participant-level mean (aireadi.md §4)
  double glucose_sd;    // mg/dL, between participants
  double log_sd_slow;   // slow (hours) glucose variation, log units
  double log_sd_fast;   // fast (minutes) glucose variation, log units
  double meal_amp;      // peak meal response, log units
  double age_shift;     // years relative to 61
  double daily_steps;   // median steps/day
  double sleep_shift;   // extra awake (+) and less deep (-) sleep, log units
};

// Order: healthy, pre-diabetes, oral/non-insulin, insulin (the glucose order).
inline const std::array<GroupProfile, 4> kGroups = {{
    {0.33, 0, 1, 119.2, 13.7, 0.07, 0.025, 0.16, -0.6, 7500.0, 0.00},
    {0.26, 3, 1, 125.6, 17.7, 0.09, 0.030, 0.20, -0.1, 6800.0, 0.05},
    {0.29, 2, 2, 144.2, 25.7, 0.14, 0.035, 0.27, 1.7, 5800.0, 0.10},
    {0.12, 1, 0, 157.9, 27.7, 0.19, 0.045, 0.30, 1.1, 5000.0, 0.15},
}};

constexpr int kWindowsPerDay = 12;    // window starts 08:00 ... 19:00
constexpr int kHoursPerDay = 13;      // 08:00 - 21:00
constexpr int kReadingsPerHour = 12;  // CGM every 5 minutes
constexpr int kReadingsPerWindow = 24;
constexpr int kBurnInReadings = 24;  // two hours before 08:00 for the AR processes
constexpr double kDayStartHour = 8.0;

// Ground-truth constants (see the formula at the top of synth.cpp).
constexpr double kScale = 0.7;
constexpr double kTrigger = 2.5;
constexpr double kCentre = 2.2;
constexpr double kTraitSd = 0.25;

constexpr double kSaturation = 0.45;
constexpr std::size_t kNumTriggers = 11;
// Trigger terms that act in each study group (kGroups order), weight 0 or 1.
constexpr std::array<std::array<double, kNumTriggers>, 4> kTriggers = {
    {                                      // T1 T2 T3 T4 T5 T6 T7 T8 T9 T10 T11
     {0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1},    // healthy: sleep and activity
     {1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0},    // pre-diabetes: glucose with inactivity or poor sleep
     {0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0},    // oral / non-insulin: excursions and glucose load
     {1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0}}};  // insulin: glucose control

// Relative activity by hour of day (08:00 ... 20:00).
constexpr std::array<double, kHoursPerDay> kStepProfile = {0.9, 1.0, 0.9, 1.0, 1.2, 1.0, 0.9,
                                                           0.9, 1.0, 1.2, 1.3, 1.0, 0.7};

// Rounds to `decimals` places (dividing by 10^k gives the nearest double, so the
// CSV shows 16.6, not 16.600000000000001).
inline double round_to(double v, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(v * scale) / scale;
}

// The noiseless ground-truth score from feature values (formula at the top of
// synth.cpp); `group` indexes kGroups.
double stress_score(double awake, double deep, double rem, double steps, double glucose, double hyper,
                    double tir, double age, bool on_insulin, int group);

struct Participant {
  std::string id;
  const GroupProfile* group = nullptr;
  int gender_code = 0;
  double age = 61.0;
  double glucose_mean = 120.0;        // mg/dL
  double variability = 1.0;           // multiplies the group's log sds
  double meal_amp = 0.2;              // log units
  double steps_rate = 8.0;            // steps/min, typical daytime rate
  std::array<double, 4> sleep_log{};  // log propensities: awake, light, deep, rem
  double trait = 0.0;                 // unobserved stress trait (label only)
};

// "1001", "4038", "7060": the site digit and a 3-digit number.
std::string participant_id(int site_digit, int number);
// The ids of a cohort of n participants: sites in turn drawn from the stream
// "synth.sites", numbered per site from 1.
std::vector<std::string> participant_ids(std::uint64_t seed, std::size_t n);
// The seed of participant i's own stream (draw_participant, then per day
// draw_night and simulate_day).
std::uint64_t participant_seed(std::uint64_t seed, std::size_t i);

Participant draw_participant(Rng& rng, const std::string& id);

// One night: shares in % (awake, light, deep, rem), rounded to 0.1 with light
// as the remainder (sum = 100).
std::array<double, 4> draw_night(Rng& rng, const Participant& p);

struct Day {
  std::array<double, kHoursPerDay> steps{};  // steps/min per hour
  std::vector<double> glucose;               // [kHoursPerDay * 12] readings from 08:00, mg/dL
};

// One day's hourly step rates (08:00-21:00) and CGM trace (08:00, 08:05, ... 20:55).
Day simulate_day(Rng& rng, const Participant& p);

// The 12 feature columns (Col order), group participant_id, label high_stress.
Schema make_schema();

}  // namespace sensecf::data::synth_model
