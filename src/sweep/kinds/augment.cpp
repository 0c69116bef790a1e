// augment: f_s retrained on the rows a scarce scenario kept plus ratio x
// (rows removed) valid CFs of one method, labelled with their target class
// (valid: f_s predicts it), and scored on the test rows (Table IV, Fig. 7).
#include <spdlog/spdlog.h>

#include <cmath>

#include "common.h"
#include "kinds.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace {

class Augment final : public TaskKind {
 public:
  const char* name() const override { return vocab::kAugment; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    for (const auto& split : study_splits(config)) {
      if (split.full()) continue;
      for (const auto& method : config.sweep.methods) {
        if (is_llm_method(method) && !llm_seed(config, split.seed)) continue;  // no LLM CFs on this seed
        if (!augments(config.sweep, method)) continue;
        const GenerateParams cfs{split, method, vocab::kForAugment};
        for (double ratio : config.sweep.ratios) {
          plan.add(name(), AugmentParams{split, method, ratio}.to_json(),
                   {{"rows", prepare_key(split)}, {"clf", train_clf_key(split)}, {"cfs", generate_key(cfs)}},
                   0.4);  // measured: ~0.3 s (the NN retrained on ~1,000 rows)
        }
      }
    }
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const auto p = AugmentParams::from(task);
    const SplitRows rows = read_split_rows(input_dir(task, env.workdir, "rows"), task);
    const data::Dataset d = dataset_for(rows, env);
    const store::CfArrays cfs = read_cf_set(input_dir(task, env.workdir, "cfs"), task);

    data::Matrix x = d.x.rows(rows.kept);
    std::vector<int> y = labels(d, rows.kept);
    long long wanted_total = 0, added_total = 0;
    for (int c : scarce_classes(p.split.scenario)) {
      const std::size_t removed = d.count_label(c, rows.removed);
      const auto wanted = static_cast<std::size_t>(std::llround(p.ratio * static_cast<double>(removed)));
      std::size_t added = 0;
      // Valid CFs of class c in query order.
      for (std::size_t i = 0; i < cfs.n && added < wanted; ++i) {
        if (cfs.target[i] != c || !cfs.valid[i]) continue;
        x.values.insert(x.values.end(), cfs.counterfactual.begin() + static_cast<long>(i * cfs.d),
                        cfs.counterfactual.begin() + static_cast<long>((i + 1) * cfs.d));
        ++x.n_rows;
        y.push_back(c);
        ++added;
      }
      if (added < wanted) {
        // In the task's log; rank 0 sums these up in one line at the end (runner.cpp).
        spdlog::info("{}: only {} valid class-{} CFs for the {} wanted (ratio {} of {} removed)", task.label(), added,
                     c, wanted, p.ratio, removed);
      }
      wanted_total += static_cast<long long>(wanted);
      added_total += static_cast<long long>(added);
    }
    auto model = clf::make_classifier(nn_options(p.split.seed, env));
    model->fit(d.schema, x, y);
    const auto m = clf::evaluate(labels(d, rows.test), model->predict_proba(d.x.rows(rows.test)));
    store::TaskOutput out;
    auto row = clf_row(task, "nn", m, x.n_rows);
    row.n_added = added_total;
    row.n_wanted = wanted_total;
    out.clf.push_back(row);
    add_curve(task, *model, out);
    return out;
  }
};

}  // namespace

const TaskKind& augment_kind() {
  static const Augment kind;
  return kind;
}

}  // namespace sensecf::sweep::kinds
