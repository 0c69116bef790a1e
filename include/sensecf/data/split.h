// Patient-level train/test split and label-scarcity scenarios.
//
// split: all rows of a patient land on the same side; patients are stratified
// by their majority label so that both sides keep the class balance where the
// data allow it. Scenarios remove a fraction of one or both classes from the
// training rows and remember what they removed (augmentation ratios are relative
// to the removed count).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf::data {

struct Split {
  std::vector<std::size_t> train;  // row indices into the Dataset, ascending
  std::vector<std::size_t> test;
};

Split patient_split(const Dataset& data, double test_fraction, std::uint64_t seed);

// The split a data set's provider chose (AI-READI's recommended_split):
// patients whose entry in `split_of` is "test" are the test set, every other
// entry ("train", "val") trains. Throws naming a patient without an entry.
Split assigned_split(const Dataset& data, const std::map<std::string, std::string>& split_of);

enum class Scarcity { kFull, kPositive, kNegative, kDual };
Scarcity parse_scarcity(const std::string& name);  // full|positive|negative|dual
std::string to_string(Scarcity s);

struct Scenario {
  Scarcity kind = Scarcity::kFull;
  double fraction = 0.5;            // share of the targeted class(es) removed
  std::vector<std::size_t> kept;    // training rows that remain
  std::vector<std::size_t> removed; // training rows taken away
  std::size_t removed_of(int label, const Dataset& data) const;
};

// Applies a scarcity scenario to `train_rows` (row-level, seeded).
Scenario make_scenario(const Dataset& data, const std::vector<std::size_t>& train_rows,
                       Scarcity kind, double fraction, std::uint64_t seed);

// Keeps a share (1 - reduction) of the patients of `rows` (stratified by their
// majority label) and returns their rows, ascending: rows of one patient are
// correlated, so removing patients is what "less training data" means for a new
// study (the paper's Fig. 1). Seeded.
std::vector<std::size_t> reduce_patients(const Dataset& data, const std::vector<std::size_t>& rows,
                                         double reduction, std::uint64_t seed);

}  // namespace sensecf::data
