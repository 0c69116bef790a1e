// A synthetic AI-READI-like cohort: the paper's 12 features per 2-hour window.
//
// Mutable: awake_pct, light_pct, deep_pct, rem_pct (sleep stages of the previous
// night, %), steps_mean (mean steps per minute-record in the window), glucose_mean
// (mg/dL), hyper_events (count of >=15 min runs above 180 mg/dL), tir_pct (% of
// readings in 70-180 mg/dL). Immutable: age, gender, medication, subgroup.
// Plus participant_id and the label high_stress.
//
// Distributions follow the AI-READI study groups; values are correlated within a
// participant; the label comes from a documented nonlinear ground-truth model
// with noise (see synth.cpp), so the direction of a useful counterfactual change
// is known. Deterministic for a seed.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf {
class Options;
}

namespace sensecf::data {

struct SynthOptions {
  int n_participants = 300;
  int windows_per_participant = 12;  // 2-hour windows (50% overlap) per participant: one day
  double positive_rate = 0.44;       // target share of high-stress windows
  double label_noise = 2.0;          // sd of the window noise in the latent stress score
  unsigned long seed = 7;           // Options supports unsigned long
};

void declare_options(Options& options, SynthOptions& synth);

Dataset make_synthetic_cohort(const SynthOptions& options);

// The feature table's schema, shared by the synthetic cohort and AI-READI
// ingest: the 12 features in column order (units, immutables), the categories
// of medication (insulin, no_medication, oral) and subgroup (the four
// AI-READI study groups), group participant_id, label high_stress. `genders`
// are the gender categories (the cohort's female, male; ingest's what the
// files hold, or its placeholder).
Schema cohort_schema(const std::vector<std::string>& genders);

// The medication class the public AI-READI data imply for a study group (the
// cohort's group table): healthy and pre_diabetes_lifestyle_controlled ->
// no_medication, oral_medication_and_or_non_insulin_injectable_medication_controlled
// -> oral, insulin_dependent -> insulin; "" for a group that is none of these.
std::string medication_of_study_group(const std::string& study_group);

// The ground-truth latent stress score before noise (higher = more stressed);
// exposed so tests and CF checks know the right direction of a change.
double synthetic_stress_score(const Dataset& data, std::size_t row);

}  // namespace sensecf::data
