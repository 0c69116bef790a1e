// `sensecf explain`: counterfactuals for test (or training) rows with one method,
// written as CSV (format: cf/cf_csv.h); `sensecf evaluate-cf`: the CF metrics
// of such a file. The flow itself is cf::explain_rows (cf/explain.h).
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <map>

#include "commands.h"
#include "sensecf/cf/cf_csv.h"
#include "sensecf/cf/explain.h"
#include "sensecf/clf/artefact.h"
#include "sensecf/clf/nn.h"
#include "sensecf/llm/model/options.h"
#include "sensecf/remote/options.h"

namespace sensecf::cli {
namespace {

void print_metrics(const std::map<int, cf::CfMetrics>& by_class, const std::string& method, bool json) {
  if (json) {
    nlohmann::json j = {{"method", method},
                        {"all", by_class.at(-1).to_json()},
                        {"class0", by_class.at(0).to_json()},
                        {"class1", by_class.at(1).to_json()}};
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << fmt::format("{:<8} {:>7} {:>5} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>10} {:>9}\n", "class", "queries",
                           "cfs", "coverage", "validity", "distance", "sparsity", "plaus", "yNN", "violations",
                           "s/query");
  for (const auto& [cls, m] : by_class) {
    std::cout << fmt::format("{:<8} {:>7} {:>5} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>6.3f} {:>8.3f} {:>10.3f} {:>9.4f}\n",
                             cls < 0 ? "all" : "class" + std::to_string(cls), m.n_queries, m.n_cfs, m.coverage,
                             m.validity, m.distance, m.sparsity, m.plausibility, m.ynn, m.violations,
                             m.seconds_per_query);
  }
}

}  // namespace

int cmd_explain(const std::vector<std::string>& args) {
  data::DataOptions data_options;
  cf::CfOptions cf_options;
  LogOptions log;
  std::string model_dir = "results/clf";
  std::string queries = "test";
  std::string out = "cfs.csv";
  int limit = 0;
  bool json = false;
  Options options("explain",
                  "Generate counterfactuals that flip the classifier's prediction for each test (or training) row,\n"
                  "write them as CSV (one row per CF; queries without a CF are listed with found=0) and print the\n"
                  "CF metrics per factual class.");
  data::declare_options(options, data_options);
  cf::declare_options(options, cf_options);
  // The model of an llm:<model>:<mode> method.
  llm::ModelOptions lm;
  llm::declare_options(options, lm);
  llm::declare_adapter_options(options, lm);
  options.add("lm.model", &cf_options.llm.model_dir,
              "LLM methods: the Hugging Face model directory (config.json, weights, tokenizer.json)");
  remote::declare_options(options, cf_options.llm.remote, /*with_endpoint=*/true);
  options.add("explain.clf", &model_dir, "model directory written by `sensecf train-clf` or a sweep (its train_clf task's clf/); the data "
              "options saved with it apply unless given here", "clf");
  options.add("explain.queries", &queries, "which rows to explain", "queries").choices({"test", "train"});
  options.add("explain.limit", &limit, "explain at most this many rows (0: all)", "limit");
  options.add("explain.out", &out, "CSV file for the counterfactuals", "out");
  options.add("explain.json", &json, "print the metrics as JSON", "json").not_hashed();
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args, [&] {
        return cf::method_needs_torch(cf_options.method) || clf::kind_needs_torch(clf::saved_kind(model_dir));
      }))
    return 0;

  cf_options.llm.adapter = lm.adapter;
  cf_options.llm.device = lm.device;
  cf_options.llm.dtype = lm.dtype;
  cf_options.llm.quant = lm.quant;
  const clf::ModelAndData md = clf::load_model_and_data(model_dir, options, data_options);
  std::vector<std::size_t> rows = queries == "test" ? md.test_rows : md.train_rows;
  if (limit > 0 && rows.size() > static_cast<std::size_t>(limit)) rows.resize(static_cast<std::size_t>(limit));
  const data::Matrix train_x = md.data.x.rows(md.train_rows);
  std::vector<int> train_y;
  for (auto r : md.train_rows) train_y.push_back(md.data.y[r]);
  const data::Matrix query_x = md.data.x.rows(rows);

  // Parallelism is over queries: one LibTorch thread per query thread.
  clf::set_torch_threads(1);
  cf::BlackBox f(*md.model.model);
  const cf::Context context{&f, &md.data.schema, &train_x, &train_y};
  spdlog::info("{}: explaining {} {} rows", cf_options.method, rows.size(), queries);
  const cf::ExplainRun run = cf::explain_rows(cf_options, context, query_x, cf::flip_targets(f, query_x));
  cf::write_cfs_csv(out, md.data.schema, md.data.group, rows, run.results);
  std::size_t n_found = 0;
  for (const auto& r : run.results) n_found += r.cfs.empty() ? 0 : 1;
  spdlog::info("{}: CFs for {} of {} queries in {:.2f} s (prepare {:.2f} s, {} model calls), written to {}",
               run.generator_name, n_found, run.results.size(), run.total_seconds, run.prepare_seconds,
               run.n_model_calls, out);
  if (!run.usage.empty()) {
    auto u = [&run](const char* k) { return run.usage.count(k) ? run.usage.at(k) : 0.0; };
    spdlog::info("{}: {} answers ({} from the cache), {} requests ({} retries, {} given up), {} + {} tokens, ~${:.4f}",
                 run.generator_name, u("answers"), u("cache_hits"), u("requests"), u("retries"), u("failures"),
                 u("prompt_tokens"), u("completion_tokens"), u("cost_usd"));
  }
  print_metrics(run.by_class, cf_options.method, json);
  return 0;
}

int cmd_evaluate_cf(const std::vector<std::string>& args) {
  data::DataOptions data_options;
  LogOptions log;
  std::string model_dir = "results/clf";
  std::string cfs_path = "cfs.csv";
  bool json = false;
  Options options("evaluate-cf",
                  "Compute the CF metrics (validity, distance, sparsity, plausibility, yNN, violations, redundancy,\n"
                  "time) of a CSV written by `sensecf explain`, per factual class. See docs/cf-metrics.md.");
  data::declare_options(options, data_options);
  options.add("evaluate.clf", &model_dir, "model directory written by `sensecf train-clf` or a sweep (its train_clf task's clf/); the data "
              "options saved with it apply unless given here", "clf");
  options.add("evaluate.cfs", &cfs_path, "CSV written by `sensecf explain`", "cfs");
  options.add("evaluate.json", &json, "print the metrics as JSON", "json").not_hashed();
  declare_common_options(options, log);
  if (!parse_and_start(options, log, args, [&] { return clf::kind_needs_torch(clf::saved_kind(model_dir)); }))
    return 0;

  const clf::ModelAndData md = clf::load_model_and_data(model_dir, options, data_options);
  const cf::CfsCsv file = cf::read_cfs_csv(cfs_path, md.data.schema, md.data.group);
  const data::Matrix query_x = md.data.x.rows(file.rows);
  const data::Matrix train_x = md.data.x.rows(md.train_rows);
  cf::BlackBox f(*md.model.model);
  print_metrics(cf::evaluate_by_class(file.results, query_x, md.data.schema, f, train_x), cfs_path, json);
  return 0;
}

}  // namespace sensecf::cli
