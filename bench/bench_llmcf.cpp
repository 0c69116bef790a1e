// Throughput of the LLM CF generator (llmcf/generator.h) on the CPU: CFs per
// second of cf::explain_all with llm:tiny:zero-shot over 64 queries, per
// cf.llm_batch_size (1, 16, 64), constrained decoding on and off (+free), and
// the verifier (+verify: 4 candidates per query, constrained).
//   bench_llmcf [--benchmark_filter=...]
//
// Workload: the synthetic cohort (12 features, bounds learned from the data);
// f = XGBoost (50 rounds) trained on it; queries = 64 cohort rows, each asking
// for the class f does not predict. The model is a tiny Llama (hidden 64, 2
// layers, corpus BPE) pretrained here (~1 minute on 2 cores, untimed) on 480
// documents, 4 epochs: the zero-shot prompt of a cohort row followed by the
// answer block of the nearest row of the other class (its immutables reset to
// the query's), so that it writes well-formed answers of ~100 tokens and stops,
// in and out of the grammar. Its CFs' quality is not the point.
//
// Counters (wall time, one thread): CFs/s (queries that got a CF), valid_CFs/s,
// answers/s, tokens/s (answer tokens, counted by re-encoding the answers),
// tok_per_answer, parsed (share of answers that parse), valid (share of
// queries whose CF flips f). The GPU figures at Llama-3.1-8B shapes come from
// bench/gpu/bench_llmcf_gpu (scripts/device/gpu-check, stage llmcf).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sensecf/cf/explain.h"
#include "sensecf/cf/generator.h"
#include "sensecf/clf/classifier.h"
#include "sensecf/data/synth.h"
#include "sensecf/llm/model/model.h"
#include "sensecf/llm/text/tokenizer.h"
#include "sensecf/llm/train/pretrain.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/generator.h"
#include "sensecf/llmcf/prompt.h"

namespace {
namespace fs = std::filesystem;
using namespace sensecf;

constexpr std::size_t kQueries = 64;

struct Setup {
  data::Dataset data;
  data::Matrix train_x;
  std::vector<int> train_y;  // f's labels of the cohort
  std::unique_ptr<clf::Classifier> model;
  std::unique_ptr<cf::BlackBox> f;
  data::Matrix queries;
  std::vector<int> targets;
  std::shared_ptr<const llm::CausalLM> lm;
  std::shared_ptr<const llm::Tokenizer> tokenizer;
  double pretrain_seconds = 0;
};

// Made once and never destroyed: XGBoost's booster must not be freed after
// the library's own statics are gone (it aborts at exit).
const Setup& setup() {
  static const Setup& once = *[] {
    auto owned = std::make_unique<Setup>();
    Setup& s = *owned;
    data::SynthOptions so;
    so.n_participants = 40;  // 480 rows
    s.data = data::make_synthetic_cohort(so);
    std::vector<std::size_t> all(s.data.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    s.data.schema.learn_bounds(s.data.x, all);
    s.train_x = s.data.x.rows(all);

    clf::ClfOptions co;
    co.model = "xgb";
    co.xgb_rounds = 50;
    s.model = clf::make_classifier(co);
    s.model->fit(s.data.schema, s.data.x, s.data.y);
    s.f = std::make_unique<cf::BlackBox>(*s.model);
    s.train_y = clf::predict(*s.model, s.train_x);

    // Documents: a row's prompt, then the answer block of the nearest row f
    // puts in the other class, with the row's immutables.
    const auto& schema = s.data.schema;
    std::vector<std::string> docs;
    Rng rng(11);
    for (std::size_t i = 0; i < s.data.size(); ++i) {
      const double* x = s.train_x.row(i);
      const int desired = 1 - s.train_y[i];
      const auto p = llmcf::build_prompt(schema, x, s.train_y[i], desired, {}, llmcf::PromptOptions{});
      const auto near = llmcf::choose_examples(schema, s.train_x, s.train_y, x, desired, 1, "nearest", rng);
      std::vector<double> cf(s.train_x.row(near.at(0)), s.train_x.row(near.at(0)) + schema.size());
      for (std::size_t j = 0; j < schema.size(); ++j)
        if (schema.features[j].immutable) cf[j] = x[j];
      docs.push_back(llmcf::plain_text(p) + llmcf::format_answer(schema, cf.data()));
    }
    const auto dir = fs::temp_directory_path() / ("sensecf_bench_llmcf_" + std::to_string(::getpid()));
    llm::PretrainOptions po;
    po.out_dir = (dir / "tiny").string();
    po.batch_size = 8;
    po.seed = 3;
    po.epochs = 4;  // 240 steps: fewer and greedy answers loop instead of closing </new>
    const auto r = llm::pretrain_tiny_llama(docs, po);
    s.pretrain_seconds = r.seconds;
    s.lm = llm::CausalLM::load(po.out_dir);
    s.tokenizer = std::make_shared<llm::Tokenizer>(llm::Tokenizer::load(po.out_dir + "/tokenizer.json"));
    std::error_code ec;
    fs::remove_all(dir, ec);

    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < kQueries; ++i) rows.push_back(i * 7 % s.data.size());
    s.queries = s.data.x.rows(rows);
    s.targets = cf::flip_targets(*s.f, s.queries);
    return owned.release();
  }();
  return once;
}

// explain_all of llm:tiny:zero-shot<tags> over the 64 queries, batch size state.range(0).
void BM_ExplainAll(benchmark::State& state, const std::string& tags) {
  const Setup& s = setup();
  cf::CfOptions o;
  o.method = "llm:tiny:zero-shot" + tags;
  o.llm.model_dir = "tiny";  // a label: the model is in memory
  o.llm.batch_size = static_cast<int>(state.range(0));
  o.seed = 5;
  // One thread: the tiny model gains little from a second one, and on a shared
  // 2-core machine other load stalls LibTorch's thread barriers (a first run
  // with both cores took twice its CPU time in wall time, erratically).
  o.threads = 1;
  const cf::Context context{s.f.get(), &s.data.schema, &s.train_x, &s.train_y};
  auto generator = llmcf::make_llm_generator(o, s.lm, s.tokenizer);
  generator->prepare(context);

  double cfs = 0, valid = 0, answers = 0, parsed = 0, tokens = 0;
  for (auto _ : state) {
    const auto results = cf::explain_all(*generator, context, s.queries, s.targets, o);
    for (const auto& r : results) {
      cfs += r.cfs.empty() ? 0 : 1;
      valid += !r.cfs.empty() && r.cfs.front().valid ? 1 : 0;
      answers += static_cast<double>(r.answers.size());
      parsed += r.n_parsed;
      for (const auto& a : r.answers) tokens += static_cast<double>(s.tokenizer->encode(a).size());
    }
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["CFs/s"] = benchmark::Counter(cfs, benchmark::Counter::kIsRate);
  state.counters["valid_CFs/s"] = benchmark::Counter(valid, benchmark::Counter::kIsRate);
  state.counters["answers/s"] = benchmark::Counter(answers, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  state.counters["tok_per_answer"] = answers > 0 ? tokens / answers : 0;
  state.counters["parsed"] = answers > 0 ? parsed / answers : 0;
  state.counters["valid"] = valid / (n * static_cast<double>(kQueries));
  state.SetLabel("pretrained in " + std::to_string(static_cast<int>(s.pretrain_seconds + 0.5)) + " s");
}

}  // namespace

BENCHMARK_CAPTURE(BM_ExplainAll, constrained, std::string(""))
    ->ArgName("batch")->Arg(1)->Arg(16)->Arg(64)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_ExplainAll, free, std::string("+free"))
    ->ArgName("batch")->Arg(1)->Arg(16)->Arg(64)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_ExplainAll, verify4, std::string("+verify"))
    ->ArgName("batch")->Arg(1)->Arg(16)->Arg(64)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

BENCHMARK_MAIN();
