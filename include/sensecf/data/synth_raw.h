// A synthetic RAW AI-READI cohort: the released file layout and JSON/TSV
// formats (v2.0.0 or v3.0.0, quirks included), generated from the same
// per-participant model as make_synthetic_cohort (data/synth.h), plus the
// exact feature table an ingest must recover from those files by the rules of
// docs/aireadi.md.
//
// DIR/ (v2) or DIR/<uuid>/dataset/ (v3, as a download unpacks) holds
//   participants.tsv
//   wearable_blood_glucose/manifest.tsv
//   wearable_blood_glucose/continuous_glucose_monitoring/dexcom_g6/<id>/<id>_DEX.json
//   wearable_activity_monitor/manifest.tsv
//   wearable_activity_monitor/{sleep,stress,physical_activity}/garmin_vivosmart5/<id>/<id>_{sleep,stress,activity}.json
// and DIR itself (never inside dataset/) holds
//   ground_truth.csv          the feature table (the columns of `sensecf synth`;
//                             gender "not_provided"), participants in id order,
//                             windows in time order
//   ground_truth.windows.csv  every candidate window (the local dates with a
//                             CGM reading x 08:00..19:00), kept or dropped:
//                             participant_id,start,cgm_readings,stress_readings,
//                             activity_minutes,drop_reason ("" when kept, else
//                             cgm|stress|steps|sleep)
// The ground truth uses the default ingest options (windows from 08:00 to
// 19:00 local, min 18 CGM readings, 20 valid stress values, 60 step minutes,
// 180 sleep minutes, Low = 40, High = 400, hyperglycaemia > 180 mg/dL for >= 3
// readings, high stress = mean > 75). The conventions where the spec leaves
// room are listed at the top of synth_raw.cpp. Deterministic for a seed.
#pragma once

#include <cstddef>
#include <string>

#include "sensecf/data/synth.h"

namespace sensecf::data {

struct RawSynthOptions {
  // n_participants, seed and label_noise are used; windows_per_participant and
  // positive_rate are not (the label comes from the written stress values).
  SynthOptions synth;
  int days = 10;              // days of wear per participant (1..60)
  std::string format = "v2";  // v2 | v3
};

struct RawSynthSummary {
  std::string dataset_root;  // the folder holding participants.tsv
  std::size_t participants = 0;
  std::size_t files = 0;            // files written, ground truth included
  std::size_t bytes = 0;            // their total size
  std::size_t windows_kept = 0;     // rows of ground_truth.csv
  std::size_t windows_dropped = 0;  // candidate windows dropped (all reasons)
  std::size_t positives = 0;        // kept windows with high_stress = 1
};

// The v3 download folder under DIR: a fixed uuid-like name.
const char* raw_v3_folder();

// Writes the raw cohort and its ground truth under `dir` (created if needed;
// files already there are overwritten, others left alone). Throws UsageError
// for bad options and sensecf::Error when a file cannot be written.
RawSynthSummary write_raw_cohort(const RawSynthOptions& options, const std::string& dir);

}  // namespace sensecf::data
