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
  if (!setup.data_identity.is_null()) meta["data_identity"] = setup.data_identity;
  save_model(model, schema, meta, dir);
}

nlohmann::json data_identity(const data::Dataset& d) {
  nlohmann::json patients = nlohmann::json::array();
  for (std::size_t r = 0; r < d.size(); ++r) {
    if (!patients.empty() && patients.back()[0] == d.group[r]) {
      patients.back()[1] = patients.back()[1].get<std::size_t>() + 1;
    } else {
      patients.push_back({d.group[r], 1});
    }
  }
  std::string values;
  values.reserve(d.x.values.size() * sizeof(double) + d.y.size());
  for (std::size_t r = 0; r < d.size(); ++r) {
    values += static_cast<char>('0' + d.y[r]);
    values.append(reinterpret_cast<const char*>(d.x.row(r)), d.x.n_cols * sizeof(double));
  }
  return {{"rows", d.size()}, {"patients", patients}, {"values", fnv1a_hex(values)}};
}

void check_data_identity(const nlohmann::json& stored, const data::Dataset& d, const std::string& model_dir) {
  if (stored.is_null()) return;  // a model from before data identities
  const std::string hint = "pass the data file the model was trained on, unchanged (meta.json's data_settings name "
                           "it), or train a model on this one";
  const auto rows = stored.at("rows").get<std::size_t>();
  if (rows != d.size()) {
    throw Error(fmt::format("the model in '{}' was trained on {} rows, but '{}' has {}", model_dir, rows, d.source,
                            d.size()),
                hint);
  }
  std::size_t r = 0;
  for (const auto& run : stored.at("patients")) {
    const auto id = run.at(0).get<std::string>();
    const auto n = run.at(1).get<std::size_t>();
    for (std::size_t k = 0; k < n; ++k, ++r) {
      if (d.group[r] != id) {
        throw Error(fmt::format("'{}' is not the data the model in '{}' was trained on: row {} is patient '{}' "
                                "there, '{}' here (the rows are reordered, or of another file)",
                                d.source, model_dir, r, id, d.group[r]),
                    hint);
      }
    }
  }
  if (stored.at("values").get<std::string>() != data_identity(d).at("values").get<std::string>()) {
    throw Error(fmt::format("'{}' has the rows and patients the model in '{}' was trained on, but other values "
                            "(a label or feature changed)",
                            d.source, model_dir),
                hint);
  }
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
    if (meta.contains("data_identity")) s.data_identity = meta.at("data_identity");
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
  try {
    check_data_identity(setup.data_identity, out.data, model_dir);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("'{}/meta.json': data_identity is damaged ({})", model_dir, e.what()),
                "retrain the model");
  }
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
