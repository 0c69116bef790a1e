// Throughput of the remote LLM client (remote/client.h) against the fake
// OpenAI endpoint of the tests (tests/support/openai_server.h) on a loopback
// HTTP/1.1 server in the same process: what the client itself costs, and
// whether its limits hold, with no network and no model in the way.
//   bench_remote [--benchmark_filter=...]   (one pass: ~20 s on 2 cores)
// Figures and the command behind them: docs/remote-llms.md, "Throughput
// against a loopback server".
//
//   BM_Throughput/C/L   requests/s at max_concurrency C (1, 4, 16, 64) with a
//                       server that answers after L ms (0: as fast as it can;
//                       20: latency-bound, so requests/s should grow ~C / L
//                       until the client or the server saturates the CPUs)
//   BM_RateLimited      lm.rpm = 6000 (100/s), concurrency 16, 20 ms server:
//                       the achieved rate against the limit
//   BM_WarmCache        requests/s answered from a warm response cache, offline
//                       (the offline rebuild of a finished study)
//   BM_Retries/L        every 10th HTTP request answered 429 with Retry-After: 0,
//                       lm.retry_base = 0.001, concurrency 16, L ms server
//
// Workload: batches of 256 requests, one complete() each, every request a
// zero-shot SenseCF prompt (llmcf::build_prompt) of one synthetic cohort row
// (12 features, ~2 KB) with a seed of its own, so no two requests in the run
// share a body. complete() starts its worker threads and connections afresh
// each call, so that cost is in every figure, as it is in a sweep.
//
// Counters (wall time): items/s = requests answered per second; p50_ms = the
// median time between consecutive requests on one connection, seen by the
// server: one HTTP round trip plus the client's own work on it (the client's
// per-request latency; under a rate limit it includes the wait for a slot);
// prompt_bytes. BM_RateLimited adds rate (answers/s over complete()'s wall
// time), server_rps (arrivals/s at the server, first to last), max_in_1s (the
// most arrivals in any 1 s window) and limit_rps; its label says OVER THE
// LIMIT when max_in_1s exceeds limit_rps + 1 (a window that starts and ends on
// a slot holds one more). BM_Retries adds retries and failures per batch.
//
// Deliberately not: TLS, a real network, token-rate limits, streaming.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sensecf/data/synth.h"
#include "sensecf/llmcf/prompt.h"
#include "sensecf/remote/client.h"
#include "support/http_server.h"
#include "support/openai_server.h"

namespace {
namespace fs = std::filesystem;
using namespace sensecf;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatch = 256;

// The prompts of the first kBatch rows of a synthetic cohort, each asking for
// the other label than its own.
const std::vector<llmcf::Prompt>& prompts() {
  static const std::vector<llmcf::Prompt> once = [] {
    data::SynthOptions so;
    so.n_participants = 40;  // 480 rows
    auto d = data::make_synthetic_cohort(so);
    std::vector<std::size_t> all(d.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    d.schema.learn_bounds(d.x, all);
    std::vector<llmcf::Prompt> ps;
    for (std::size_t i = 0; i < kBatch; ++i)
      ps.push_back(llmcf::build_prompt(d.schema, d.x.row(i), d.y[i], 1 - d.y[i], {}, llmcf::PromptOptions{}));
    return ps;
  }();
  return once;
}

double prompt_bytes() {
  double n = 0;
  for (const auto& p : prompts()) n += static_cast<double>(p.system.size() + p.user.size());
  return n / static_cast<double>(prompts().size());
}

// One batch; seeds first_seed, first_seed + 1, ...
std::vector<remote::ChatRequest> batch(std::uint64_t first_seed) {
  std::vector<remote::ChatRequest> rs(kBatch);
  for (std::size_t i = 0; i < kBatch; ++i) {
    rs[i].messages = {{"system", prompts()[i].system}, {"user", prompts()[i].user}};
    rs[i].seed = first_seed + i;
  }
  return rs;
}

// The fake endpoint behind a probe that timestamps every request per
// connection (one server thread each) and can answer every nth chat request
// with a 429 before the fake sees it.
class ProbedServer {
 public:
  ProbedServer(int delay_ms, int fail_every)
      : fake_(make_options(delay_ms)), fail_every_(fail_every), http_([this](const testing::HttpRequest& r) {
          return handle(r);
        }) {}

  std::string base_url() const { return http_.base_url() + "/v1"; }

  // Forgets the connections of the last batch (a new batch opens new ones,
  // and a finished thread's id may be reused).
  void new_batch() {
    std::lock_guard<std::mutex> lock(mutex_);
    last_.clear();
  }
  std::vector<double> gaps_ms() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return gaps_ms_;
  }
  std::vector<Clock::time_point> arrivals() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return arrivals_;
  }

 private:
  static testing::FakeOpenAiOptions make_options(int delay_ms) {
    testing::FakeOpenAiOptions o;
    o.delay_ms = delay_ms;
    return o;
  }

  testing::HttpReply handle(const testing::HttpRequest& request) {
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      arrivals_.push_back(now);
      const auto id = std::this_thread::get_id();
      const auto it = last_.find(id);
      if (it != last_.end())
        gaps_ms_.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
      last_[id] = now;
    }
    if (fail_every_ > 0 && ++n_seen_ % static_cast<std::size_t>(fail_every_) == 0) {
      testing::HttpReply r;
      r.status = 429;
      r.headers = {{"Content-Type", "application/json"}, {"Retry-After", "0"}};
      r.body = R"({"error":{"message":"Rate limit reached for requests","type":"requests",)"
               R"("code":"rate_limit_exceeded"}})";
      return r;
    }
    return fake_.answer(request);
  }

  testing::FakeOpenAi fake_;  // before http_: its threads call into it
  int fail_every_ = 0;
  std::atomic<std::size_t> n_seen_{0};
  mutable std::mutex mutex_;
  std::map<std::thread::id, Clock::time_point> last_;
  std::vector<double> gaps_ms_;
  std::vector<Clock::time_point> arrivals_;
  testing::LoopbackHttpServer http_;
};

remote::RemoteOptions client_options(const ProbedServer& server, int concurrency) {
  remote::RemoteOptions o;
  o.base_url = server.base_url();
  o.model_name = "fake-model";
  o.api_key_env = "SENSECF_BENCH_NO_SUCH_KEY";
  o.timeout = 30;
  o.max_concurrency = concurrency;
  return o;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// Runs one batch per iteration; false (and the benchmark skipped) when a
// request failed.
bool run_batches(benchmark::State& state, ProbedServer& server, remote::Client& client) {
  prompts();  // the cohort is made once, untimed
  std::uint64_t seed = 1;
  for (auto _ : state) {
    server.new_batch();
    auto rs = batch(seed);
    seed += kBatch;
    client.complete(rs);
    for (const auto& r : rs) {
      if (!r.error.empty()) {
        state.SkipWithError(("a request failed: " + r.error).c_str());
        return false;
      }
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
  state.counters["p50_ms"] = median(server.gaps_ms());
  state.counters["prompt_bytes"] = prompt_bytes();
  return true;
}

void BM_Throughput(benchmark::State& state) {
  const int concurrency = static_cast<int>(state.range(0));
  ProbedServer server(static_cast<int>(state.range(1)), 0);
  remote::Client client(client_options(server, concurrency));
  run_batches(state, server, client);
}
BENCHMARK(BM_Throughput)
    ->ArgNames({"conc", "delay_ms"})
    ->ArgsProduct({{1, 4, 16, 64}, {0, 20}})
    ->MinTime(0.5)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_RateLimited(benchmark::State& state) {
  constexpr double kRpm = 6000;
  ProbedServer server(20, 0);
  auto o = client_options(server, 16);
  o.requests_per_minute = kRpm;
  remote::Client client(o);
  if (!run_batches(state, server, client)) return;

  const auto t = server.arrivals();
  const auto span = [&](std::size_t a, std::size_t b) { return std::chrono::duration<double>(t[b] - t[a]).count(); };
  const double limit = kRpm / 60.0;
  // The most arrivals in any 1 s window [t_i, t_i + 1 s).
  std::size_t max_in_1s = 0;
  for (std::size_t i = 0, j = 0; i < t.size(); ++i) {
    while (j < t.size() && span(i, j) < 1.0) ++j;
    max_in_1s = std::max(max_in_1s, j - i);
  }
  const double wall = client.usage().seconds;
  state.counters["rate"] = wall > 0 ? static_cast<double>(client.usage().answers) / wall : 0;
  state.counters["server_rps"] = t.size() > 1 ? static_cast<double>(t.size() - 1) / span(0, t.size() - 1) : 0;
  state.counters["max_in_1s"] = static_cast<double>(max_in_1s);
  state.counters["limit_rps"] = limit;
  // One more than the limit fits a window that starts and ends on a slot.
  if (static_cast<double>(max_in_1s) > limit + 1) {
    std::fprintf(stderr, "bench_remote: %zu requests within 1 s, above the limit of %.0f/s\n", max_in_1s, limit);
    state.SetLabel("OVER THE LIMIT");
  }
}
// One batch: 2.56 s at 100/s.
BENCHMARK(BM_RateLimited)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_WarmCache(benchmark::State& state) {
  const fs::path dir = fs::temp_directory_path() / ("sensecf_bench_remote_cache_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ProbedServer server(0, 0);
  auto o = client_options(server, 16);
  o.cache_dir = dir.string();
  {
    remote::Client fill(o);
    auto rs = batch(1);
    fill.complete(rs);
  }
  o.offline = true;  // never a request: a miss throws
  remote::Client client(o);
  for (auto _ : state) {
    auto rs = batch(1);
    client.complete(rs);
    benchmark::DoNotOptimize(rs.back().answer.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
  state.counters["hits"] = static_cast<double>(client.usage().cache_hits) / static_cast<double>(state.iterations());
  state.counters["prompt_bytes"] = prompt_bytes();
  fs::remove_all(dir);
}
BENCHMARK(BM_WarmCache)->MinTime(0.5)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Retries(benchmark::State& state) {
  ProbedServer server(static_cast<int>(state.range(0)), 10);
  auto o = client_options(server, 16);
  o.retry_base = 0.001;
  remote::Client client(o);
  if (!run_batches(state, server, client)) return;
  const auto u = client.usage();
  const auto n = static_cast<double>(state.iterations());
  state.counters["retries"] = static_cast<double>(u.retries) / n;
  state.counters["failures"] = static_cast<double>(u.failures) / n;
}
BENCHMARK(BM_Retries)->ArgName("delay_ms")->Arg(0)->Arg(20)->MinTime(0.5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
