// Sweep configurations shared by the plan and task-kind tests.
#pragma once

#include "sensecf/sweep/plan.h"

namespace sensecf::test {

// A small study grid: 2 methods x 2 scarce scenarios x 2 ratios x 2 seeds, and
// Fig. 1 for two models at one reduction, on the synthetic cohort.
inline sweep::SweepConfig small_study() {
  sweep::SweepConfig c;
  c.data.source = "synth";
  c.sweep.methods = {"nice", "dice-random"};
  c.sweep.scenarios = {"positive", "dual"};
  c.sweep.ratios = {0.5, 1.0};
  c.sweep.seeds = {1, 2};
  c.sweep.fig1_models = {"nn", "svm"};
  c.sweep.fig1_reductions = {0.3};
  return c;
}

}  // namespace sensecf::test
