// Benchmarks of the NICE baseline on the default synthetic cohort (300
// participants x 12 windows, 80/20 patient split, the NN black box): the
// nearest-unlike-neighbour search (exact scan vs NearestRow) and whole NICE
// queries per reward, with the normal schema and with the like-for-like one of
// bench/parity (no immutables, unbounded ranges). One thread; per-query times
// compare with bench/parity/run_parity.py's "ours median s/CF".
//
//   build/cpu-release/bin/bench_baselines --benchmark_out=baselines.json --benchmark_out_format=json
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <limits>
#include <map>
#include <memory>

#include "sensecf/cf/generator.h"
#include "sensecf/cf/heom.h"
#include "sensecf/cf/nice.h"
#include "sensecf/clf/classifier.h"
#include "sensecf/data/split.h"
#include "sensecf/data/synth.h"

namespace {

using namespace sensecf;

struct Problem {
  data::Dataset cohort;
  data::Schema free_schema;  // no immutables, unbounded ranges, every code allowed
  data::Matrix train_x, test_x;
  std::vector<int> train_y;
  std::unique_ptr<clf::Classifier> nn;
  std::unique_ptr<cf::BlackBox> f;
  std::vector<int> targets;  // per test row: the class the NN does not predict
};

const Problem& problem() {
  static const Problem p = [] {
    Problem q;
    q.cohort = data::make_synthetic_cohort(data::SynthOptions{});
    const auto split = data::patient_split(q.cohort, 0.2, 42);
    q.cohort.schema.learn_bounds(q.cohort.x, split.train);  // as explain does
    q.train_x = q.cohort.x.rows(split.train);
    q.test_x = q.cohort.x.rows(split.test);
    for (auto r : split.train) q.train_y.push_back(q.cohort.y[r]);
    clf::ClfOptions o;
    o.model = "nn";
    o.threads = 1;
    q.nn = clf::make_classifier(o);
    q.nn->fit(q.cohort.schema, q.train_x, q.train_y);
    q.f = std::make_unique<cf::BlackBox>(*q.nn);
    for (int pred : clf::predict(*q.nn, q.test_x)) q.targets.push_back(1 - pred);
    q.free_schema = q.cohort.schema;
    for (data::Feature& feature : q.free_schema.features) {
      feature.immutable = false;
      feature.lower = -std::numeric_limits<double>::max();
      feature.upper = std::numeric_limits<double>::max();
      feature.allowed.clear();
      for (std::size_t c = 0; c < feature.categories.size(); ++c)
        feature.allowed.push_back(static_cast<int>(c));
    }
    return q;
  }();
  return p;
}

// NUN search over the training rows the NN predicts as class 1, for the test rows.
void nun_search(benchmark::State& state, bool exact_scan) {
  const Problem& p = problem();
  const cf::Heom heom(p.cohort.schema, p.train_x, "minmax");
  std::vector<std::size_t> pool;
  const std::vector<int> pred = clf::predict(*p.nn, p.train_x);
  for (std::size_t r = 0; r < pred.size(); ++r)
    if (pred[r] == 1) pool.push_back(r);
  const cf::NearestRow index(heom, p.train_x, pool);
  std::size_t q = 0, exact = 0;
  for (auto _ : state) {
    const double* x = p.test_x.row(q);
    cf::NearestRow::Stats stats;
    benchmark::DoNotOptimize(exact_scan ? index.scan(x) : index.nearest(x, &stats));
    exact += exact_scan ? pool.size() : stats.exact;
    q = (q + 1) % p.test_x.n_rows;
  }
  state.counters["rows"] = static_cast<double>(pool.size());
  state.counters["exact_per_query"] = static_cast<double>(exact) / static_cast<double>(state.iterations());
}
BENCHMARK_CAPTURE(nun_search, scan, true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(nun_search, nearest_row, false)->Unit(benchmark::kMicrosecond);

// One NICE query per iteration, cycling through the test rows.
void nice_query(benchmark::State& state, const std::string& reward, bool free_schema) {
  const Problem& p = problem();
  cf::CfOptions o;
  o.threads = 1;
  auto generator = cf::make_nice(o, reward);
  generator->prepare(
      cf::Context{p.f.get(), free_schema ? &p.free_schema : &p.cohort.schema, &p.train_x, &p.train_y});
  std::size_t q = 0, found = 0;
  const std::size_t calls_before = p.f->n_calls(), rows_before = p.f->n_rows();
  for (auto _ : state) {
    const std::vector<double> x(p.test_x.row(q), p.test_x.row(q) + p.test_x.n_cols);
    Rng rng(q);
    const cf::QueryResult r = generator->explain(x, p.targets[q], rng);
    found += r.cfs.size();
    q = (q + 1) % p.test_x.n_rows;
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["found"] = static_cast<double>(found) / n;
  state.counters["f_calls"] = static_cast<double>(p.f->n_calls() - calls_before) / n;
  state.counters["f_rows"] = static_cast<double>(p.f->n_rows() - rows_before) / n;
}
BENCHMARK_CAPTURE(nice_query, none_free, std::string("none"), true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(nice_query, sparsity_free, std::string("sparsity"), true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(nice_query, proximity_free, std::string("proximity"), true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(nice_query, none, std::string("none"), false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(nice_query, sparsity, std::string("sparsity"), false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(nice_query, proximity, std::string("proximity"), false)->Unit(benchmark::kMicrosecond);

// predict_proba on the row counts NICE's steps ask for (one row; one per mutable feature).
void nn_small_batch(benchmark::State& state) {
  const Problem& p = problem();
  const auto batch = static_cast<std::size_t>(state.range(0));
  std::vector<std::size_t> rows(batch);
  for (std::size_t i = 0; i < batch; ++i) rows[i] = i;
  const data::Matrix x = p.test_x.rows(rows);
  for (auto _ : state) benchmark::DoNotOptimize(p.nn->predict_proba(x));
  state.SetItemsProcessed(state.iterations() * static_cast<long>(batch));
}
BENCHMARK(nn_small_batch)->Arg(1)->Arg(8)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);  // prepare() logs once per benchmark run
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
