// A trained classifier directory together with the rows it was trained and
// tested on: the data file is read again and split exactly as `train-clf` split
// it (seed, test fraction and scarcity scenario come from the model's meta.json).
#pragma once

#include <string>
#include <vector>

#include "sensecf/clf/classifier.h"
#include "sensecf/data/csv.h"

namespace sensecf::cli {

struct ModelAndData {
  clf::TrainedModel model;
  data::Dataset data;                   // schema = the model's (bounds learned from its training rows)
  std::vector<std::size_t> train_rows;  // the rows the model was trained on
  std::vector<std::size_t> test_rows;
};

ModelAndData load_model_and_data(const std::string& model_dir, const data::DataOptions& data_options);

}  // namespace sensecf::cli
