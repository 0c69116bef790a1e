// The fixture CF method tests share: a synthetic cohort, a classifier trained
// on all of it, and query rows whose target is the class the classifier does
// not predict for them.
#pragma once

#include <memory>
#include <vector>

#include "sensecf/cf/explain.h"
#include "sensecf/cf/generator.h"
#include "sensecf/clf/classifier.h"
#include "sensecf/data/synth.h"

namespace sensecf::test {

// A synthetic cohort whose schema bounds are learned from all its rows (what
// prompts, answers and the grammar read as the permitted ranges).
inline data::Dataset bounded_cohort(int participants, int windows, unsigned long seed) {
  data::SynthOptions o;
  o.n_participants = participants;
  o.windows_per_participant = windows;
  o.seed = seed;
  auto d = data::make_synthetic_cohort(o);
  std::vector<std::size_t> all(d.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  d.schema.learn_bounds(d.x, all);
  return d;
}

struct FlipCohort {
  data::Dataset data;
  std::unique_ptr<clf::Classifier> model;
  std::unique_ptr<cf::BlackBox> f;
  std::vector<std::size_t> rows;  // the queries' cohort rows: i * stride % n, i < n_queries
  data::Matrix queries;           // those rows of the cohort
  std::vector<int> targets;       // per query: the class f does not predict
};

inline FlipCohort make_flip_cohort(int participants, unsigned long synth_seed, const clf::ClfOptions& clf,
                                   std::size_t n_queries, std::size_t stride) {
  data::SynthOptions so;
  so.n_participants = participants;
  so.seed = synth_seed;
  FlipCohort c;
  c.data = data::make_synthetic_cohort(so);
  c.model = clf::make_classifier(clf);
  c.model->fit(c.data.schema, c.data.x, c.data.y);
  c.f = std::make_unique<cf::BlackBox>(*c.model);
  for (std::size_t i = 0; i < n_queries; ++i) c.rows.push_back(i * stride % c.data.size());
  c.queries = c.data.x.rows(c.rows);
  c.targets = cf::flip_targets(*c.f, c.queries);
  return c;
}

}  // namespace sensecf::test
