// Benchmarks of the data layer and the black-box classifiers on the default
// synthetic cohort (300 participants x 12 windows = 3,600 rows, 12 features):
// cohort generation, CSV parsing, NN training, and predict_proba throughput of
// every classifier (the inner loop of every counterfactual search).
//
//   build/cpu-release/bin/bench_data_clf --benchmark_out=bench.json --benchmark_out_format=json
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>

#include "sensecf/clf/classifier.h"
#include "sensecf/data/csv.h"
#include "sensecf/data/split.h"
#include "sensecf/data/synth.h"

namespace {

using namespace sensecf;

const data::Dataset& cohort() {
  static const data::Dataset d = data::make_synthetic_cohort(data::SynthOptions{});
  return d;
}

void BM_SynthCohort(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(data::make_synthetic_cohort(data::SynthOptions{}));
  state.SetItemsProcessed(state.iterations() * static_cast<long>(cohort().size()));
}
BENCHMARK(BM_SynthCohort)->Unit(benchmark::kMillisecond);

void BM_ReadCsv(benchmark::State& state) {
  const auto path = (std::filesystem::temp_directory_path() / "sensecf-bench-cohort.csv").string();
  data::write_csv(cohort(), path);
  data::DataOptions o;
  o.path = path;
  for (auto _ : state) benchmark::DoNotOptimize(data::read_csv(o));
  state.SetItemsProcessed(state.iterations() * static_cast<long>(cohort().size()));
  state.SetBytesProcessed(state.iterations() * static_cast<long>(std::filesystem::file_size(path)));
  std::remove(path.c_str());
}
BENCHMARK(BM_ReadCsv)->Unit(benchmark::kMillisecond);

struct Trained {
  std::unique_ptr<clf::Classifier> model;
  data::Matrix test_x;
};

Trained train(const std::string& kind) {
  const auto& d = cohort();
  const auto split = data::patient_split(d, 0.2, 42);
  clf::ClfOptions o;
  o.model = kind;
  o.threads = 1;
  Trained t{clf::make_classifier(o), d.x.rows(split.test)};
  std::vector<int> y;
  for (auto r : split.train) y.push_back(d.y[r]);
  t.model->fit(d.schema, d.x.rows(split.train), y);
  return t;
}

// Full NN training on the default cohort's 80% split (early stopping included).
void BM_NnFit(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(train("nn"));
}
BENCHMARK(BM_NnFit)->Unit(benchmark::kSecond)->Iterations(2);

// predict_proba on batches of state.range(0) rows, one thread.
void predict_bench(benchmark::State& state, const std::string& kind) {
  static std::map<std::string, Trained> cache;
  if (!cache.count(kind)) cache.emplace(kind, train(kind));
  const Trained& t = cache.at(kind);
  const auto batch = static_cast<std::size_t>(state.range(0));
  std::vector<std::size_t> rows(batch);
  for (std::size_t i = 0; i < batch; ++i) rows[i] = i % t.test_x.n_rows;
  const data::Matrix x = t.test_x.rows(rows);
  for (auto _ : state) benchmark::DoNotOptimize(t.model->predict_proba(x));
  state.SetItemsProcessed(state.iterations() * static_cast<long>(batch));
}
BENCHMARK_CAPTURE(predict_bench, nn, std::string("nn"))->Arg(1)->Arg(1024);
BENCHMARK_CAPTURE(predict_bench, xgb, std::string("xgb"))->Arg(1)->Arg(1024);
BENCHMARK_CAPTURE(predict_bench, rf, std::string("rf"))->Arg(1)->Arg(1024);
BENCHMARK_CAPTURE(predict_bench, svm, std::string("svm"))->Arg(1)->Arg(1024);

}  // namespace

BENCHMARK_MAIN();
