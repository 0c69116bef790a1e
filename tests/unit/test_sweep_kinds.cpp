// The task kinds as units: registry, typed parameters and named inputs, the
// artefacts tasks hand each other (task_io.h), the worker cache, data sources.
#include <gtest/gtest.h>

#include <tuple>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include "sensecf/clf/artefact.h"
#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/vocabulary.h"
#include "sensecf/data/source.h"
#include "sensecf/data/split.h"
#include "sensecf/data/synth.h"
#include "sensecf/sweep/kind.h"
#include "sensecf/sweep/task_io.h"
#include "sweep_fixtures.h"
#include "test_util.h"

namespace sensecf::sweep {
namespace {

using test::small_study;

TEST(SweepKinds, EveryPlannedKindIsRegisteredAndUnknownKindsNameTheKnownOnes) {
  for (const auto& t : build_plan(small_study())) EXPECT_EQ(task_kind(t.kind).name(), t.kind);
  EXPECT_THROW_WITH(task_kind("pretrain"), Error, "unknown task kind 'pretrain' (this sensecf knows ingest, features, prepare, train_clf");
}

// The keys of the refactored plan equal the keys the pre-kinds builder gave
// (read from a results file of the embedded config written before the change):
// results files and journals from earlier versions keep matching their tasks.
TEST(SweepKinds, KeysAreThoseOfThePreviousPlanBuilder) {
  const std::map<std::string, std::string> before = {
      {"prepare positive seed=1", "f62b78abdfe47cb0"},
      {"train_clf positive seed=1", "66cecd97572e1901"},
      {"generate dice-gradient positive augment seed=1", "a3046178f7548bf4"},
      {"augment nice positive ratio=0.2 seed=1", "85fa2bcc5477edb3"},
      {"fig1 nn reduction=0 seed=1", "b15e0f4adc1ec43c"},
  };
  SweepConfig c;
  c.data.source = "synth";
  c.sweep.methods = {"nice", "dice-gradient"};
  c.sweep.seeds = {1};
  c.sweep.fig1_models = {"nn"};
  std::map<std::string, std::string> now;
  for (const auto& t : build_plan(c)) now[t.label()] = t.key;
  for (const auto& [label, key] : before) {
    ASSERT_TRUE(now.count(label)) << "no task '" << label << "' in the plan";
    EXPECT_EQ(now[label], key) << label;
  }
}

TEST(SweepKinds, InputsAreNamedAndPointAtTheTaskOfTheSameSplit) {
  const auto tasks = build_plan(small_study());
  std::map<std::string, const Task*> by_key;
  for (const auto& t : tasks) by_key[t.key] = &t;
  int checked = 0;
  for (const auto& t : tasks) {
    ASSERT_EQ(t.deps.size(), t.inputs.size()) << t.label();
    for (const auto& [name, key] : t.inputs) {
      ASSERT_TRUE(by_key.count(key)) << t.label() << " input " << name;
      const Task& in = *by_key[key];
      const std::string expected = name == "rows" ? vocab::kPrepare : name == "clf" ? vocab::kTrainClf : vocab::kGenerate;
      EXPECT_EQ(in.kind, expected) << t.label() << " input " << name;
      EXPECT_EQ(in.params.at("seed"), t.params.at("seed")) << t.label() << " input " << name;
      if (t.kind != vocab::kFig1) {
        EXPECT_EQ(in.param("scenario"), t.param("scenario")) << t.label();
      }
      if (name == "cfs") {
        EXPECT_EQ(in.param("method"), t.param("method"));
        EXPECT_EQ(in.param("purpose"), vocab::kForAugment);
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
  EXPECT_THROW_WITH(tasks.front().input("clf"), Error, "has no input 'clf'");
}

TEST(SweepKinds, PlanBuilderRefusesAnInputThatIsNotPlannedYet) {
  PlanBuilder plan;
  EXPECT_THROW_WITH(plan.add("train_clf", {{"seed", 1}}, {{"rows", "0123456789abcdef"}}, 1.0), Error,
                    "reads 'rows' from task 0123456789abcdef, which is not in the plan before it");
}

Task reader() {
  Task t;
  t.kind = "augment";
  t.params = {{"method", "nice"}, {"seed", 1}};
  return t;
}

TEST(TaskIo, CfSetsRoundTripExactlyWithNaN) {
  test::TempDir dir;
  store::CfArrays a;
  a.key = "00000000000000aa";
  a.method = "nice";
  a.scenario = "dual";
  a.purpose = "augment";
  a.seed = 4;
  a.features = {"x", "y"};
  a.n = 2;
  a.d = 2;
  a.query_row = {7, 9};
  a.factual = {1.0 / 3.0, 2.0, -0.0, 1e-300};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  a.counterfactual = {0.1 + 0.2, 5.0, nan, nan};
  a.target = {1, 0};
  a.probability = {0.75, nan};
  a.valid = {1, 0};
  a.found = {1, 0};
  write_cf_set(dir.path(), a);
  const auto b = read_cf_set(dir.path(), reader());
  EXPECT_EQ(b.key, a.key);
  EXPECT_EQ(b.purpose, a.purpose);
  EXPECT_EQ(b.features, a.features);
  EXPECT_EQ(b.query_row, a.query_row);
  EXPECT_EQ(b.factual, a.factual);
  EXPECT_EQ(b.counterfactual[0], 0.1 + 0.2);
  EXPECT_TRUE(std::isnan(b.counterfactual[2]) && std::isnan(b.counterfactual[3]) && std::isnan(b.probability[1]));
  EXPECT_EQ(b.target, a.target);
  EXPECT_EQ(b.valid, a.valid);
  EXPECT_EQ(b.found, a.found);
}

TEST(TaskIo, BrokenArtefactsNameTheReaderAndThePath) {
  test::TempDir dir;
  EXPECT_THROW_WITH(read_cf_set(dir.path(), reader()), Error, "augment nice seed=1: cannot read '");
  std::ofstream(dir.file("cfs.json")) << "{\"artefact\": \"cf-set\", \"version\": 1, \"key\": 3}";
  EXPECT_THROW_WITH(read_cf_set(dir.path(), reader()), Error, "cfs.json' is not a CF set");
  std::ofstream(dir.file("rows.json")) << "{\"train\": [1, 2";
  EXPECT_THROW_WITH(read_split_rows(dir.path(), reader()), Error, "rows.json' is not valid JSON");
  write_split_rows(dir.path(), {{1, 2, 3}, {1, 3}, {2}, {4, 5}});
  const auto rows = read_split_rows(dir.path(), reader());
  EXPECT_EQ(rows.kept, (std::vector<std::size_t>{1, 3}));
  EXPECT_EQ(rows.test, (std::vector<std::size_t>{4, 5}));
}

TEST(WorkerCache, LoadsEachModelOnceAndDropsTheLeastRecentlyUsed) {
  test::TempDir dir;
  data::SynthOptions so;
  so.n_participants = 20;
  const auto d = data::make_synthetic_cohort(so);
  clf::ClfOptions o;
  o.model = "svm";
  for (const char* name : {"a", "b"}) {
    auto m = clf::make_classifier(o);
    std::vector<int> y(d.y.begin(), d.y.end());
    m->fit(d.schema, d.x, y);
    clf::save_model(*m, d.schema, nlohmann::json::object(), dir.file(name));
  }
  WorkerCache cache;
  cache.set_model_capacity(1);
  const auto a1 = cache.model(dir.file("a"));
  const auto a2 = cache.model(dir.file("a"));
  EXPECT_EQ(a1.get(), a2.get());
  EXPECT_EQ(cache.model_loads(), 1u);
  cache.model(dir.file("b"));  // evicts a
  cache.model(dir.file("a"));
  EXPECT_EQ(cache.model_loads(), 3u);
}

TEST(DataSource, IsAnExplicitChoiceWithErrorsThatSayWhatToPass) {
  data::DataOptions o;
  EXPECT_THROW_WITH(data::check_source(o, "explain"), UsageError, "data.source = csv needs a file");
  o.source = "synth";
  EXPECT_THROW_WITH(data::check_source(o, "train-clf"), UsageError, "only for `sensecf sweep`");
  EXPECT_NO_THROW(data::check_source(o, "sweep"));
  o.path = "cohort.csv";
  EXPECT_THROW_WITH(data::check_source(o, "sweep"), UsageError, "data.source = synth does not read it");
  o.source = "aireadi";
  EXPECT_NO_THROW(data::check_source(o, "sweep"));  // data.path = the release's folder
  EXPECT_THROW_WITH(data::check_source(o, "train-clf"), UsageError, "is read by `sensecf sweep`");
  o.path.clear();
  EXPECT_THROW_WITH(data::check_source(o, "sweep"), UsageError, "data.source = aireadi needs the release");
  o.path = "cohort.csv";
  o.source = "csv";
  EXPECT_NO_THROW(data::check_source(o, "sweep"));
}

TEST(DataSource, SweepTakesTheShortDataAndSeedFlags) {
  SweepConfig c;
  Options options("sweep", "test");
  declare_options(options, c);
  ASSERT_TRUE(options.parse({"--data", "cohort.csv", "--seed", "1,2,3"}));
  EXPECT_EQ(c.data.path, "cohort.csv");
  EXPECT_EQ(c.sweep.seeds, (std::vector<int>{1, 2, 3}));
}

TEST(DataSource, AListThatNamesAnEntryTwiceIsRefusedNamingTheKey) {
  for (const auto& [flag, value, text] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--sweep.seeds", "1,1", "sweep.seeds lists 1 twice"},
           {"--sweep.methods", "nice,dice-random,nice", "sweep.methods lists nice twice"},
           {"--sweep.ratios", "0.2,0.2", "sweep.ratios lists 0.2 twice"}}) {
    SweepConfig c;
    Options options("sweep", "test");
    declare_options(options, c);
    EXPECT_THROW_WITH(options.parse({"--data", "cohort.csv", flag, value}), UsageError, text);
  }
}

TEST(DataSource, AStudySweepWithoutDataIsRefusedAtParseTime) {
  SweepConfig c;
  Options options("sweep", "test");
  declare_options(options, c);
  EXPECT_THROW_WITH(options.parse({"--sweep.seeds", "1"}), UsageError, "data.source = csv needs a file");
  SweepConfig probe;
  Options probe_options("sweep", "test");
  declare_options(probe_options, probe);
  EXPECT_NO_THROW(probe_options.parse({"--sweep.plan", "probe"}));
}

TEST(ModelArtefact, RecordsTheDataSettingsAsOptionsText) {
  data::DataOptions o;
  o.path = "rel/cohort.csv";
  o.categorical = {"gender"};
  o.test_fraction = 0.25;
  const auto s = clf::data_settings(o);
  EXPECT_EQ(s.at("data.source"), "csv");
  EXPECT_TRUE(s.at("data.path").front() == '/') << s.at("data.path");
  EXPECT_EQ(s.at("data.categorical"), "gender");
  EXPECT_EQ(s.at("data.test_fraction"), "0.25");
}

TEST(SweepKinds, FinetuneTasksComeOnePerModelAndSplitAsGangs) {
  SweepConfig c = small_study();
  const auto without = build_plan(c);
  EXPECT_EQ(std::count_if(without.begin(), without.end(), [](const Task& t) { return t.kind == vocab::kFinetune; }),
            0);
  c.sweep.llm_models = {"tiny=/models/tiny-llama:nf4-dq", "other=/models/x"};
  c.sweep.finetune_ranks = 2;
  const auto tasks = build_plan(c);
  std::map<std::string, const Task*> by_key;
  for (const auto& t : tasks) by_key[t.key] = &t;
  int n = 0;
  for (const auto& t : tasks) {
    if (t.kind != vocab::kFinetune) continue;
    ++n;
    EXPECT_EQ(t.ranks, 2);
    EXPECT_EQ(by_key.at(t.input("rows"))->kind, vocab::kPrepare);
    EXPECT_EQ(t.param("quant"), t.param("model") == "tiny" ? "nf4-dq" : "none");
    EXPECT_EQ(t.param("path"), t.param("model") == "tiny" ? "/models/tiny-llama" : "/models/x");
  }
  EXPECT_EQ(n, 2 * 2 * 3);  // models x seeds x (full + 2 scenarios)
}

TEST(SweepKinds, LlmModelSpecsAreCheckedWithAnExample) {
  EXPECT_EQ(parse_llm_model("llama=/m/Llama-3.1-8B:nf4").quant, "nf4");
  EXPECT_EQ(parse_llm_model("llama=/m/Llama-3.1-8B").path, "/m/Llama-3.1-8B");
  EXPECT_THROW_WITH(parse_llm_model("/m/Llama"), UsageError, "'/m/Llama' is not name=DIR");
  EXPECT_THROW_WITH(parse_llm_model("my llama=/m"), UsageError, "may hold letters, digits");
}

TEST(SweepKinds, LlmMethodsReadTheirModelAdapterAndBaseOnTheLlmSeedsOnly) {
  SweepConfig c = small_study();
  c.sweep.llm_models = {"tiny=@tiny", "big=/models/llama"};
  c.sweep.llm_seeds = {c.sweep.seeds.front()};
  c.sweep.methods.push_back("llm:tiny:zero-shot");
  c.sweep.methods.push_back("llm:tiny:fine-tuned+verify");
  c.sweep.methods.push_back("llm:big:few-shot");
  const auto tasks = build_plan(c);
  std::map<std::string, const Task*> by_key;
  for (const auto& t : tasks) by_key[t.key] = &t;
  const int llm_seed = c.sweep.seeds.front();
  int pretrain = 0, llm_generate = 0;
  for (const auto& t : tasks) {
    if (t.kind == vocab::kPretrainLm) {
      ++pretrain;
      EXPECT_EQ(t.param("model"), "tiny");
      const Task& rows = *by_key.at(t.input("rows"));
      EXPECT_EQ(rows.param("scenario"), vocab::kFull) << "the tiny model learns from the full split's training rows";
      EXPECT_EQ(rows.param("seed"), std::to_string(llm_seed));
    }
    if (t.kind == vocab::kFinetune) {
      EXPECT_EQ(t.param("seed"), std::to_string(llm_seed));
    }
    if (t.kind != vocab::kGenerate || t.param("method").rfind("llm:", 0) != 0) continue;
    ++llm_generate;
    EXPECT_EQ(t.param("seed"), std::to_string(llm_seed));
    const std::string method = t.param("method");
    const bool tiny = method.rfind("llm:tiny:", 0) == 0;
    EXPECT_EQ(t.has_input("base"), tiny) << method;
    if (tiny) {
      EXPECT_EQ(by_key.at(t.input("base"))->kind, vocab::kPretrainLm);
    }
    const bool fine_tuned = method.find(":fine-tuned") != std::string::npos;
    EXPECT_EQ(t.has_input("adapter"), fine_tuned) << method;
    if (fine_tuned) {
      const Task& ft = *by_key.at(t.input("adapter"));
      EXPECT_EQ(ft.kind, vocab::kFinetune);
      EXPECT_EQ(ft.param("model"), "tiny");
      EXPECT_EQ(ft.param("scenario"), t.param("scenario")) << "the adapter of the task's own split";
    }
  }
  EXPECT_EQ(pretrain, 1);
  EXPECT_EQ(llm_generate, 3 * 3);  // methods x (full + 2 scenarios), one seed
  // Baseline augment tasks run on every seed, LLM ones on the LLM seeds.
  for (const auto& t : tasks)
    if (t.kind == vocab::kAugment && t.param("method").rfind("llm:", 0) == 0) {
      EXPECT_EQ(t.param("seed"), std::to_string(llm_seed));
    }
}

TEST(SweepKinds, FinetuneTargetsAreInTheTaskKeyAndReadTheClassifierWhenNeeded) {
  SweepConfig c = small_study();
  c.sweep.llm_models = {"tiny=@tiny"};
  auto finetunes = [](const SweepConfig& config) {
    std::vector<Task> out;
    for (const auto& t : build_plan(config))
      if (t.kind == vocab::kFinetune) out.push_back(t);
    return out;
  };
  const auto nearest = finetunes(c);
  c.sweep.llm_targets = "self";
  c.sweep.llm_self_rounds = 2;
  const auto self = finetunes(c);
  ASSERT_EQ(nearest.size(), self.size());
  for (std::size_t i = 0; i < self.size(); ++i) {
    EXPECT_FALSE(nearest[i].has_input("clf")) << "nearest targets need no classifier";
    EXPECT_TRUE(self[i].has_input("clf"));
    EXPECT_NE(nearest[i].key, self[i].key);
    EXPECT_EQ(self[i].param("targets"), "self");
    EXPECT_EQ(self[i].param("rounds"), "2");
    EXPECT_FALSE(nearest[i].params.contains("targets")) << "the default keeps earlier results' keys";
  }
}

TEST(SweepKinds, OnlyTheAugmentMethodsGenerateForAugmentation) {
  SweepConfig c = small_study();
  c.sweep.augment_methods = {"nice"};
  for (const auto& t : build_plan(c)) {
    if (t.kind == vocab::kAugment) {
      EXPECT_EQ(t.param("method"), "nice");
    }
    if (t.kind == vocab::kGenerate && t.param("method") == "dice-random") {
      EXPECT_EQ(t.param("purpose"), vocab::kTable3) << "dice-random still explains Table III's rows";
    }
  }
  Options o("t", "");
  SweepConfig d;
  declare_options(o, d);
  EXPECT_THROW_WITH(o.parse({"--sweep.methods", "nice", "--sweep.augment_methods", "dice-random", "--data.source",
                             "synth"}),
                    UsageError, "'dice-random' is not one of sweep.methods");
}

TEST(SweepKinds, AnLlmMethodMustNameAListedModel) {
  SweepConfig c;
  Options o("t", "");
  declare_options(o, c);
  EXPECT_THROW_WITH(o.parse({"--sweep.methods", "nice,llm:llama:zero-shot", "--data.source", "synth"}),
                    UsageError, "names the model 'llama', which sweep.llm_models lacks");
  EXPECT_THROW_WITH(o.parse({"--sweep.methods", "llm:llama:half-shot", "--data.source", "synth"}), UsageError,
                    "unknown mode 'half-shot'");
  SweepConfig c2;
  Options o2("t", "");
  declare_options(o2, c2);
  EXPECT_THROW_WITH(o2.parse({"--sweep.llm_models", "llama=/no/such/Llama-3.1-8B", "--data.source", "synth"}),
                    UsageError, "no config.json in '/no/such/Llama-3.1-8B'");
}

TEST(SweepKinds, RemoteModelsAreNamedByUrlPromptedAndNeverFineTuned) {
  const auto openai = parse_llm_model("gpt-4o=https://api.openai.com/v1");
  EXPECT_TRUE(openai.remote());
  EXPECT_EQ(openai.path, "https://api.openai.com/v1");
  EXPECT_EQ(openai.model_name, "gpt-4o");
  const auto vllm = parse_llm_model("llama=meta-llama/Llama-3.1-8B-Instruct@http://node17:8000/v1");
  EXPECT_TRUE(vllm.remote());
  EXPECT_EQ(vllm.path, "http://node17:8000/v1");
  EXPECT_EQ(vllm.model_name, "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_FALSE(parse_llm_model("llama=/m/Llama").remote());
  EXPECT_EQ(parse_llm_model("x=/m/v@2/Llama").path, "/m/v@2/Llama");  // an '@' in a directory name

  // Prompted (generate tasks), never fine-tuned (no finetune task, no pretraining).
  SweepConfig c = small_study();
  c.sweep.llm_models = {"gpt=http://127.0.0.1:9/v1"};
  c.sweep.methods.push_back("llm:gpt:zero-shot");
  c.sweep.methods.push_back("llm:gpt:few-shot+verify");
  int generate = 0;
  for (const auto& t : build_plan(c)) {
    EXPECT_NE(t.kind, vocab::kFinetune);
    EXPECT_NE(t.kind, vocab::kPretrainLm);
    if (t.kind == vocab::kGenerate && t.param("method").rfind("llm:gpt:", 0) == 0) {
      ++generate;
      EXPECT_FALSE(t.has_input("base"));
      EXPECT_FALSE(t.has_input("adapter"));
    }
  }
  EXPECT_EQ(generate, 2 * 2 * 3);  // methods x seeds x (full + 2 scenarios)

  SweepConfig c2;
  Options o2("t", "");
  declare_options(o2, c2);
  EXPECT_THROW_WITH(o2.parse({"--sweep.methods", "llm:gpt:fine-tuned", "--sweep.llm_models", "gpt=http://127.0.0.1:9/v1",
                              "--data.source", "synth"}),
                    UsageError, "fine-tunes a remote model");
}

TEST(SweepKinds, LmBaseUrlServesTheLlmMethodsThatLlmModelsDoesNotList) {
  SweepConfig c;
  Options o("t", "");
  declare_options(o, c);
  o.parse({"--sweep.methods", "nice,llm:gpt:zero-shot,llm:gpt:few-shot,llm:tiny:zero-shot", "--sweep.llm_models",
           "tiny=@tiny", "--lm.base_url", "http://127.0.0.1:9/v1", "--lm.model_name", "fake-model", "--data.source",
           "synth"});
  EXPECT_EQ(c.sweep.llm_models, (std::vector<std::string>{"tiny=@tiny", "gpt=fake-model@http://127.0.0.1:9/v1"}));
  const auto gpt = llm_model_of("llm:gpt:few-shot", c.sweep.llm_models);
  EXPECT_TRUE(gpt.remote());
  EXPECT_EQ(gpt.model_name, "fake-model");
  EXPECT_FALSE(llm_model_of("llm:tiny:zero-shot", c.sweep.llm_models).remote());

  SweepConfig c2;
  Options o2("t", "");
  declare_options(o2, c2);
  EXPECT_THROW_WITH(o2.parse({"--sweep.methods", "llm:gpt:zero-shot", "--lm.base_url", "localhost:8000/v1",
                              "--data.source", "synth"}),
                    UsageError, "lm.base_url must start with http:// or https://");
}

TEST(SweepKinds, AnHttpsModelWithoutItsKeyRefusesToStart) {
  SweepConfig c;
  Options o("t", "");
  declare_options(o, c);
  ::unsetenv("SENSECF_TEST_ABSENT_KEY");
  EXPECT_THROW_WITH(o.parse({"--sweep.methods", "llm:gpt-4o:zero-shot", "--sweep.llm_models",
                             "gpt-4o=https://api.openai.com/v1", "--lm.api_key_env", "SENSECF_TEST_ABSENT_KEY",
                             "--data.source", "synth"}),
                    UsageError, "$SENSECF_TEST_ABSENT_KEY holds no API key");
  // Offline (a rebuild from the cache) needs no key.
  SweepConfig c2;
  Options o2("t", "");
  declare_options(o2, c2);
  EXPECT_NO_THROW(o2.parse({"--sweep.methods", "llm:gpt-4o:zero-shot", "--sweep.llm_models",
                            "gpt-4o=https://api.openai.com/v1", "--lm.api_key_env", "SENSECF_TEST_ABSENT_KEY",
                            "--lm.offline", "true", "--lm.cache_dir", "/tmp/x", "--data.source", "synth"}));
}

}  // namespace
}  // namespace sensecf::sweep
