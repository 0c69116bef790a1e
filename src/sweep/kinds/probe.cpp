// probe (plan "probe"): a trivial task that exercises the runner itself — it
// sleeps sweep.probe_ms, fails on request (probe_fail, probe_flaky) or runs on a
// gang of 2 ranks (probe_gang) and reports the gang's size.
#include <mpi.h>
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "kinds.h"
#include "params.h"
#include "sensecf/core/check.h"
#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {
namespace {

bool has(const std::vector<int>& v, int i) { return std::find(v.begin(), v.end(), i) != v.end(); }

class Probe final : public TaskKind {
 public:
  const char* name() const override { return vocab::kProbe; }
  const char* plan() const override { return "probe"; }

  void expand(const SweepConfig& config, PlanBuilder& plan) const override {
    const auto& s = config.sweep;
    for (int i = 0; i < s.probe_tasks; ++i)
      plan.add(name(), ProbeParams{i}.to_json(), {}, s.probe_ms / 1000.0, has(s.probe_gang, i) ? 2 : 1);
  }

  store::TaskOutput run(const Task& task, const TaskEnv& env) const override {
    const auto& s = env.config->sweep;
    const int index = ProbeParams::from(task).index;
    if (s.probe_ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(s.probe_ms));
    if (has(s.probe_fail, index)) throw Error(fmt::format("probe task {} fails by request (sweep.probe_fail)", index));
    if (has(s.probe_flaky, index) && env.attempt == 1)
      throw Error(fmt::format("probe task {} fails on its first attempt (sweep.probe_flaky)", index));
    // Every rank of the gang contributes 1: the sum is the gang's size.
    int one = 1, gang_size = 0;
    SENSECF_MPI_CHECK(MPI_Allreduce(&one, &gang_size, 1, MPI_INT, MPI_SUM, env.gang));
    store::TaskOutput out;
    store::TrainRow r;
    r.key = task.key;
    r.kind = vocab::kProbe;
    r.step = index;
    r.loss = gang_size;
    r.val_loss = env.attempt;
    out.train.push_back(r);
    return out;
  }
};

}  // namespace

const TaskKind& probe_kind() {
  static const Probe kind;
  return kind;
}

}  // namespace sensecf::sweep::kinds
