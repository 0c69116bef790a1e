// The trained-model artefact (see artefact.h).
#include "sensecf/clf/artefact.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/source.h"
#include "sensecf/data/split.h"

namespace sensecf::clf {

std::map<std::string, std::string> data_settings(const data::DataOptions& options) {
  data::DataOptions o = options;
  if (!o.path.empty()) o.path = std::filesystem::absolute(o.path).lexically_normal().string();
  Options declared("artefact", "");
  data::declare_options(declared, o);
  std::map<std::string, std::string> out;
  for (const auto& e : declared.entries()) out[e.key] = e.get();
  return out;
}

void save_trained_model(const Classifier& model, const data::Schema& schema, const TrainingSetup& setup,
                        nlohmann::json extra, const std::string& dir) {
  nlohmann::json meta = std::move(extra);
  meta["data_settings"] = setup.data_settings;
  meta["split"] = {{"seed", setup.split_seed}, {"test_fraction", setup.test_fraction}};
  meta["scenario"] = {{"kind", setup.scenario},
                      {"fraction", setup.scenario_fraction},
                      {"removed_class0", setup.removed_class0},
                      {"removed_class1", setup.removed_class1}};
  meta["train_rows"] = setup.train_rows;
  meta["test_rows"] = setup.test_rows;
  meta["data"] = setup.data_source;
  save_model(model, schema, meta, dir);
}

TrainingSetup training_setup(const TrainedModel& model, const std::string& dir) {
  const auto& meta = model.meta;
  try {
    TrainingSetup s;
    if (meta.contains("data_settings")) s.data_settings = meta.at("data_settings").get<std::map<std::string, std::string>>();
    s.split_seed = meta.at("split").at("seed").get<std::uint64_t>();
    s.test_fraction = meta.at("split").at("test_fraction").get<double>();
    const auto& sc = meta.at("scenario");
    s.scenario = sc.at("kind").get<std::string>();
    s.scenario_fraction = sc.at("fraction").get<double>();
    s.removed_class0 = sc.value("removed_class0", std::size_t{0});
    s.removed_class1 = sc.value("removed_class1", std::size_t{0});
    s.train_rows = meta.at("train_rows").get<std::size_t>();
    s.test_rows = meta.value("test_rows", std::size_t{0});
    s.data_source = meta.value("data", std::string());
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}/meta.json' lacks the split information: {}", dir, e.what()),
                "retrain the model with this version of `sensecf train-clf` (or `sensecf sweep`)");
  }
}

std::vector<std::string> apply_data_settings(const TrainingSetup& setup, Options& options, const std::string& model_dir) {
  std::vector<std::string> applied;
  for (const auto& [key, value] : setup.data_settings) {
    if (options.set_if_default(key, value, model_dir + "/meta.json")) applied.push_back(key + " = " + value);
  }
  return applied;
}

ModelAndData load_model_and_data(const std::string& model_dir, Options& options, const data::DataOptions& data_options) {
  ModelAndData out;
  out.model = load_model(model_dir);
  const TrainingSetup setup = training_setup(out.model, model_dir);
  const auto applied = apply_data_settings(setup, options, model_dir);
  if (!applied.empty()) spdlog::info("data settings saved with the model in '{}': {}", model_dir, join(applied, ", "));
  out.data = data::load_dataset(data_options, options.command());
  const auto& model_schema = out.model.schema;
  if (out.data.schema.names() != model_schema.names()) {
    throw Error(fmt::format("the model in '{}' was trained on features [{}], but '{}' has [{}]", model_dir,
                            join(model_schema.names(), ", "), out.data.source, join(out.data.schema.names(), ", ")),
                "pass the data file and --data options the model was trained with");
  }
  for (std::size_t j = 0; j < model_schema.size(); ++j) {
    if (model_schema.features[j].categories != out.data.schema.features[j].categories) {
      throw Error(fmt::format("feature '{}' has categories [{}] in '{}' but [{}] in the model",
                              model_schema.features[j].name, join(out.data.schema.features[j].categories, ", "),
                              out.data.source, join(model_schema.features[j].categories, ", ")),
                  "category codes would not match; use the data file the model was trained on");
    }
  }
  out.data.schema = model_schema;
  const auto split = data::patient_split(out.data, setup.test_fraction, setup.split_seed);
  const auto scenario = data::make_scenario(out.data, split.train, data::parse_scarcity(setup.scenario),
                                            setup.scenario_fraction, setup.split_seed);
  out.train_rows = scenario.kept;
  out.test_rows = split.test;
  if (out.train_rows.size() != setup.train_rows) {
    throw Error(fmt::format("re-splitting '{}' gives {} training rows, the model was trained on {}", out.data.source,
                            out.train_rows.size(), setup.train_rows),
                "use the same data file and --data options as at training time");
  }
  return out;
}

}  // namespace sensecf::clf
