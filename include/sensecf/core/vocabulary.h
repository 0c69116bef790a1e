// The words the sweep writes into the results file and the report reads back:
// task kinds, the purposes of a CF set, the label-scarcity scenarios. One place,
// so that `sweep`, `report`, `data` and the CLI cannot drift apart; the values
// are part of the results format (docs/results-format.md).
#pragma once

#include <array>
#include <string>

namespace sensecf::vocab {

// Task kinds (/tasks/kind, /metrics/clf/kind, /metrics/train/kind). One file
// each under src/sweep/kinds/ (docs/architecture.md).
inline constexpr const char* kIngest = "ingest";        // AI-READI files of some participants -> their windows
inline constexpr const char* kFeatures = "features";    // the ingest tasks' windows -> the sweep's feature table
inline constexpr const char* kPrepare = "prepare";      // split + scenario rows of one (seed, scenario)
inline constexpr const char* kTrainClf = "train_clf";   // the black-box NN f_s of one (seed, scenario)
inline constexpr const char* kFig1 = "fig1";            // one classifier on a reduced training set
inline constexpr const char* kGenerate = "generate";    // CFs of one method for one purpose
inline constexpr const char* kAugment = "augment";      // f_s retrained on reduced rows + valid CFs
inline constexpr const char* kFinetune = "finetune";    // a LoRA/QLoRA adapter of one LLM for one split
inline constexpr const char* kPretrainLm = "pretrain_lm";  // a tiny LLM trained from scratch on training rows (@tiny)
inline constexpr const char* kProbe = "probe";          // a trivial task that exercises the runner

// Why a CF set was generated (/counterfactuals/*/purpose, /metrics/cf/purpose).
inline constexpr const char* kTable3 = "table3";        // test rows, the prediction flipped (Table III)
inline constexpr const char* kForAugment = "augment";   // training rows flipped into a scarce class (Table IV)

// Label-scarcity scenarios (/metrics/*/scenario). kFull: the whole training set.
inline constexpr const char* kFull = "full";
inline constexpr const char* kPositive = "positive";    // class 1 reduced
inline constexpr const char* kNegative = "negative";    // class 0 reduced
inline constexpr const char* kDual = "dual";            // both classes reduced
// The scarce scenarios in the paper's order (Table IV's A, B, C).
inline constexpr std::array<const char*, 3> kScarceScenarios = {kPositive, kNegative, kDual};

inline bool is_scarce_scenario(const std::string& s) { return s == kPositive || s == kNegative || s == kDual; }

}  // namespace sensecf::vocab
