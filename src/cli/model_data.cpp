// Re-creates the train/test rows of a trained model from its meta.json.
#include "model_data.h"

#include <cstdint>
#include <spdlog/fmt/fmt.h>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/split.h"

namespace sensecf::cli {

ModelAndData load_model_and_data(const std::string& model_dir, const data::DataOptions& data_options) {
  ModelAndData out;
  out.model = clf::load_model(model_dir);
  out.data = data::read_csv(data_options);
  const auto& model_schema = out.model.schema;
  if (out.data.schema.names() != model_schema.names()) {
    throw Error(fmt::format("the model in '{}' was trained on features [{}], but '{}' has [{}]", model_dir,
                            join(model_schema.names(), ", "), out.data.source, join(out.data.schema.names(), ", ")),
                "pass the data file and --data options the model was trained with");
  }
  for (std::size_t j = 0; j < model_schema.size(); ++j) {
    if (model_schema.features[j].categories != out.data.schema.features[j].categories) {
      throw Error(fmt::format("feature '{}' has categories [{}] in '{}' but [{}] in the model", model_schema.features[j].name,
                              join(out.data.schema.features[j].categories, ", "), out.data.source,
                              join(model_schema.features[j].categories, ", ")),
                  "category codes would not match; use the data file the model was trained on");
    }
  }
  out.data.schema = model_schema;
  const auto& meta = out.model.meta;
  try {
    const auto seed = meta.at("split").at("seed").get<std::uint64_t>();
    const auto test_fraction = meta.at("split").at("test_fraction").get<double>();
    const auto split = data::patient_split(out.data, test_fraction, seed);
    const auto& sc = meta.at("scenario");
    const auto scenario = data::make_scenario(out.data, split.train, data::parse_scarcity(sc.at("kind").get<std::string>()),
                                              sc.at("fraction").get<double>(), seed);
    out.train_rows = scenario.kept;
    out.test_rows = split.test;
    if (out.train_rows.size() != meta.at("train_rows").get<std::size_t>()) {
      throw Error(fmt::format("re-splitting '{}' gives {} training rows, the model was trained on {}", out.data.source,
                              out.train_rows.size(), meta.at("train_rows").get<std::size_t>()),
                  "use the same data file and --data options as for train-clf");
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}/meta.json' lacks the split information: {}", model_dir, e.what()),
                "retrain the model with this version of `sensecf train-clf`");
  }
  return out;
}

}  // namespace sensecf::cli
