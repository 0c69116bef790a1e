// Results-file and journal throughput: how many task rows per second rank 0
// can make durable. Target (issue 4): >= 10,000 HDF5 rows/s.
//   build/cpu-release/bin/bench_store
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "sensecf/store/results.h"
#include "sensecf/sweep/journal.h"

namespace {

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string("sensecf_bench_") + name + "_" +
                                                    std::to_string(::getpid())))
      .string();
}

// A task row plus one classifier-metrics row: what an augment task produces.
std::pair<sensecf::store::TaskRecord, sensecf::store::TaskOutput> sample(int i) {
  sensecf::store::TaskRecord r;
  r.key = std::to_string(1000000000000000LL + i);
  r.kind = "augment";
  r.label = "augment dice-random positive ratio=0.4 seed=1";
  r.method = "dice-random";
  r.scenario = "positive";
  r.seed = 1;
  r.ratio = 0.4;
  r.status = "done";
  r.attempt = 1;
  r.rank = 1 + i % 7;
  r.host = "node001";
  r.device = "cuda:0";
  r.seconds = 2.5;
  sensecf::store::TaskOutput out;
  sensecf::store::ClfMetricRow m;
  m.key = r.key;
  m.kind = "augment";
  m.model = "nn";
  m.method = r.method;
  m.scenario = r.scenario;
  m.f1 = 0.6 + 1e-6 * i;
  out.clf.push_back(m);
  return {r, out};
}

// Appends batches of `batch` tasks (2 rows each: /tasks + /metrics/clf) and flushes after each batch.
void BM_ResultsAppendFlush(benchmark::State& state) {
  const auto batch_size = static_cast<int>(state.range(0));
  const std::string path = temp_path("results.h5");
  auto writer = sensecf::store::ResultsWriter::create(path, {});
  int i = 0;
  for (auto _ : state) {
    std::vector<std::pair<sensecf::store::TaskRecord, sensecf::store::TaskOutput>> batch;
    for (int k = 0; k < batch_size; ++k) batch.push_back(sample(i++));
    writer.append(batch);
    writer.flush();
  }
  state.counters["rows/s"] = benchmark::Counter(2.0 * i, benchmark::Counter::kIsRate);
  state.counters["tasks/s"] = benchmark::Counter(i, benchmark::Counter::kIsRate);
  std::filesystem::remove(path);
}
BENCHMARK(BM_ResultsAppendFlush)->Arg(1)->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The journal's durable append (one write + fdatasync per batch).
void BM_JournalAppend(benchmark::State& state) {
  const auto batch_size = static_cast<int>(state.range(0));
  const std::string path = temp_path("journal");
  auto journal = sensecf::sweep::Journal::create(path, {"a = 1\n", "0", ""});
  int i = 0;
  for (auto _ : state) {
    std::vector<sensecf::sweep::JournalEntry> batch;
    for (int k = 0; k < batch_size; ++k) {
      auto [r, o] = sample(i++);
      batch.push_back({r, o});
    }
    journal.append(batch);
  }
  state.counters["tasks/s"] = benchmark::Counter(i, benchmark::Counter::kIsRate);
  std::filesystem::remove(path);
}
BENCHMARK(BM_JournalAppend)->Arg(1)->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
