// A classifier with a known decision rule for CF tests: f(z) = 1 iff z[0] > 5
// (P(y = 1) = 0.9 above the threshold, 0.1 at or below it).
#pragma once

#include <string>
#include <vector>

#include "sensecf/clf/classifier.h"

namespace sensecf::test {

class Threshold final : public clf::Classifier {
 public:
  std::string kind() const override { return "threshold"; }
  void fit(const data::Schema&, const data::Matrix&, const std::vector<int>&) override {}
  std::vector<double> predict_proba(const data::Matrix& x) const override {
    std::vector<double> p;
    for (std::size_t i = 0; i < x.n_rows; ++i) p.push_back(x.at(i, 0) > 5 ? 0.9 : 0.1);
    return p;
  }
  void save(const std::string&) const override {}
  void load(const std::string&, const data::Schema&) override {}
};

}  // namespace sensecf::test
