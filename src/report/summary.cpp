// Mean ± sd over seeds, relative change, best / second-best marks.
#include "sensecf/report/summary.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace sensecf::report {

MeanSd summarise(const std::vector<double>& values) {
  MeanSd s;
  double sum = 0;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    sum += v;
    ++s.n;
  }
  if (s.n == 0) return s;
  s.mean = sum / static_cast<double>(s.n);
  if (s.n < 2) return s;
  double squares = 0;
  for (double v : values) {
    if (std::isfinite(v)) squares += (v - s.mean) * (v - s.mean);
  }
  s.sd = std::sqrt(squares / static_cast<double>(s.n - 1));
  return s;
}

MeanSd summarise(const std::map<long long, double>& by_seed) {
  std::vector<double> values;
  for (const auto& [seed, v] : by_seed) values.push_back(v);
  return summarise(values);
}

double relative_change_pct(double value, double reference) {
  if (!std::isfinite(value) || !std::isfinite(reference) || reference == 0) return kNaN;
  return 100.0 * (value - reference) / reference;
}

std::map<long long, double> relative_change_by_seed(const std::map<long long, double>& value,
                                                    const std::map<long long, double>& reference) {
  std::map<long long, double> out;
  for (const auto& [seed, v] : value) {
    const auto it = reference.find(seed);
    if (it != reference.end()) out[seed] = relative_change_pct(v, it->second);
  }
  return out;
}

std::vector<int> best_two(const std::vector<double>& values, Better better, int decimals) {
  const double scale = std::pow(10.0, decimals);
  auto shown = [scale](double v) { return std::round(v * scale); };  // the printed digits
  std::set<double> distinct;
  for (double v : values) {
    if (std::isfinite(v)) distinct.insert(shown(v));
  }
  std::vector<double> order(distinct.begin(), distinct.end());  // ascending
  if (better == Better::kHigher) std::reverse(order.begin(), order.end());
  std::vector<int> marks(values.size(), 0);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) continue;
    if (!order.empty() && shown(values[i]) == order[0]) marks[i] = 1;
    else if (order.size() > 1 && shown(values[i]) == order[1]) marks[i] = 2;
  }
  return marks;
}

}  // namespace sensecf::report
