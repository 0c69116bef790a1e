// DiCE's shared machinery: per-feature facts from the training data, post-hoc
// sparsity enhancement, nearest training rows and the final validity filter.
// See dice_common.h; reference: dice-ml 0.12 explainer_base.py and
// data_interfaces/public_data_interface.py (notes: docs/cf-baselines.md and the original sources).
//
// Deliberate differences from dice-ml (documented where they are):
//   - binary post-hoc search: dice-ml can end on an invalid value (it breaks out
//     of the search right after setting it); we restore the closest valid value.
//   - precision: dice-ml crashes on a mode printed in scientific notation
//     ('1e-05'.split('.')); we count its decimals instead.
// Mirrored on purpose, because they decide the last digit of a CF: dice-ml's
// float columns are float32 (the query always, the kd-tree's CF rows too; see
// stored_row), and its rounding is numpy's (ties to even, round_to).
#include "dice_common.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "sensecf/core/error.h"

namespace sensecf::cf::dice {

double round_to(double v, int decimals) {
  if (!std::isfinite(v)) return v;
  const double scale = std::pow(10.0, decimals);
  // nearbyint in the default rounding mode is numpy's rint: ties to even.
  const double r = std::nearbyint(v * scale) / scale;
  return std::isfinite(r) ? r : v;
}

int float32_decimals(double v) {
  if (!std::isfinite(v)) return 0;
  // Shortest round-trip digits of the float32, in scientific form d.ddde±XX.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, static_cast<float>(v), std::chars_format::scientific);
  const std::string s(buf, res.ptr);
  const auto e_pos = s.find('e');
  const auto dot = s.find('.');
  const int mantissa_decimals = dot == std::string::npos ? 0 : static_cast<int>(e_pos - dot - 1);
  const int exponent = std::stoi(s.substr(e_pos + 1));
  // Python prints at least one decimal ("3.0").
  return std::max(1, mantissa_decimals - exponent);
}

int decimal_precision(const std::vector<double>& column) {
  const bool integral =
      std::all_of(column.begin(), column.end(), [](double v) { return v == std::floor(v); });
  if (integral || column.empty()) return 0;  // pandas reads such a column as int: precision 0
  std::map<float, std::size_t> counts;       // DiCE's float columns are float32
  for (double v : column) ++counts[static_cast<float>(v)];
  std::size_t best = 0;
  for (const auto& [value, n] : counts) best = std::max(best, n);
  int decimals = 0;
  for (const auto& [value, n] : counts)
    if (n == best) decimals = std::max(decimals, float32_decimals(value));
  return decimals;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return v[lo] + frac * (v[hi] - v[lo]);
}

std::vector<double> DiceData::stored_row(const std::vector<double>& x) const {
  std::vector<double> out(x.size());
  for (std::size_t j = 0; j < x.size(); ++j) out[j] = stored(j, x[j]);
  return out;
}

bool DiceData::in_range(std::size_t j, double v) const {
  if (is_categorical[j]) {
    const int code = static_cast<int>(v);
    return static_cast<double>(code) == v &&
           std::find(allowed[j].begin(), allowed[j].end(), code) != allowed[j].end();
  }
  return v >= lower[j] && v <= upper[j];
}

DiceData build_dice_data(const Context& context, const DiceOptions& options, const std::string& method) {
  if (!context.f || !context.schema || !context.train_x) {
    throw Error(method + ": the context lacks the black box, the schema or the training rows",
                "call prepare() with a Context whose f, schema and train_x are set");
  }
  const data::Schema& schema = *context.schema;
  const data::Matrix& train = *context.train_x;
  if (train.n_cols != schema.size() || train.n_rows == 0) {
    throw Error(
        fmt::format("{}: training rows are [{}, {}], expected [n > 0, {}] (one column per schema feature)",
                    method, train.n_rows, train.n_cols, schema.size()));
  }
  DiceData data;
  const std::size_t d = schema.size();
  data.d = d;
  data.is_categorical.assign(d, false);
  data.is_varied.assign(d, false);
  data.lower.assign(d, 0.0);
  data.upper.assign(d, 0.0);
  data.allowed.assign(d, {});
  data.precision.assign(d, 0);
  data.is_float32.assign(d, false);
  data.train_min.assign(d, 0.0);
  data.train_max.assign(d, 0.0);
  data.mad.assign(d, 1.0);
  data.posthoc_q.assign(d, 0.0);
  data.posthoc_param = options.posthoc_sparsity;
  data.posthoc_algorithm = options.posthoc_algorithm;
  if (data.posthoc_algorithm != "linear" && data.posthoc_algorithm != "binary") {
    throw UsageError("cf.dice_posthoc_algorithm must be 'linear' or 'binary', got '" +
                     data.posthoc_algorithm + "'");
  }

  std::vector<double> column(train.n_rows);
  for (std::size_t j = 0; j < d; ++j) {
    const data::Feature& feature = schema.features[j];
    for (std::size_t r = 0; r < train.n_rows; ++r) column[r] = train.at(r, j);
    data.train_min[j] = *std::min_element(column.begin(), column.end());
    data.train_max[j] = *std::max_element(column.begin(), column.end());
    if (feature.is_categorical()) {
      data.is_categorical[j] = true;
      data.allowed[j] = feature.allowed;
      data.is_varied[j] = !feature.immutable && !feature.allowed.empty();
      continue;
    }
    data.continuous.push_back(j);
    data.is_varied[j] = !feature.immutable;
    data.lower[j] = feature.lower;
    data.upper[j] = feature.upper;
    data.precision[j] = decimal_precision(column);
    data.is_float32[j] =
        !std::all_of(column.begin(), column.end(), [](double v) { return v == std::floor(v); });
    const double med = median(column);
    std::vector<double> deviation(column.size());
    for (std::size_t r = 0; r < column.size(); ++r) deviation[r] = std::abs(column[r] - med);
    const double mad = median(deviation);
    data.mad[j] = mad > 0 ? mad : 1.0;  // get_valid_mads
    // Quantile of the absolute deviations of the unique (float32) values from their median.
    std::set<float> unique_values;
    for (double v : column) unique_values.insert(static_cast<float>(v));
    std::vector<double> u(unique_values.begin(), unique_values.end());
    const double u_med = median(u);
    for (double& v : u) v = std::abs(v - u_med);
    data.posthoc_q[j] = std::min(quantile(u, std::clamp(data.posthoc_param, 0.0, 1.0)), data.mad[j]);
  }
  for (std::size_t j = 0; j < d; ++j)
    if (data.is_varied[j]) data.varied.push_back(j);
  data.posthoc_order = data.continuous;
  std::stable_sort(data.posthoc_order.begin(), data.posthoc_order.end(),
                   [&](std::size_t a, std::size_t b) { return data.posthoc_q[a] > data.posthoc_q[b]; });
  return data;
}

namespace {

double sign(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); }

// dice-ml's do_linear_search on feature f of cf.
void linear_search(const DiceData& data, const BlackBox& f, const std::vector<double>& x, int target,
                   std::vector<double>& cf, std::size_t j, bool row_valid, const Deadline& deadline,
                   int limit_steps) {
  const double change = std::pow(10.0, -data.precision[j]);
  double diff = x[j] - cf[j];
  double old_diff = diff;
  bool valid = row_valid;
  for (int steps = 0; std::abs(diff) > 1e-3 && sign(diff * old_diff) > 0 && valid && steps < limit_steps;
       ++steps) {
    if (deadline.passed()) return;
    const double old_value = cf[j];
    cf[j] += sign(diff) * change;
    valid = is_valid(f.predict_proba(cf), target);
    old_diff = diff;
    if (!valid) {
      cf[j] = old_value;
      return;
    }
    diff = x[j] - cf[j];
  }
}

// dice-ml's do_binary_search on feature f of cf, except that a search ending on
// an invalid value restores the closest valid value seen (dice-ml keeps it).
void binary_search(const DiceData& data, const BlackBox& f, const std::vector<double>& x, int target,
                   std::vector<double>& cf, std::size_t j, const Deadline& deadline, int limit_steps) {
  const double diff = x[j] - cf[j];
  const double old_value = cf[j];
  cf[j] = x[j];
  if (is_valid(f.predict_proba(cf), target)) return;
  cf[j] = old_value;
  const int prec = data.precision[j];
  const double step = std::pow(10.0, -prec);
  double best = old_value;  // closest valid value to x seen so far
  bool valid = true;
  int steps = 0;
  if (diff > 0) {
    double left = cf[j], right = x[j];
    while (left <= right && steps++ < limit_steps && !deadline.passed()) {
      const double current = round_to(left + (right - left) / 2, prec);
      cf[j] = current;
      valid = is_valid(f.predict_proba(cf), target);
      if (valid) best = current;
      if (current == right || current == left) break;
      if (valid) {
        left = current + step;
      } else {
        right = current - step;
      }
    }
  } else {
    double left = x[j], right = cf[j];
    while (right >= left && steps++ < limit_steps && !deadline.passed()) {
      const double current = round_to(right - (right - left) / 2, prec);
      cf[j] = current;
      valid = is_valid(f.predict_proba(cf), target);
      if (valid) best = current;
      if (current == right || current == left) break;
      if (valid) {
        right = current - step;
      } else {
        left = current + step;
      }
    }
  }
  if (!valid) cf[j] = best;
}

}  // namespace

void posthoc_sparsity(const DiceData& data, const BlackBox& f, const std::vector<double>& x, int target,
                      std::vector<std::vector<double>>& cfs, const Deadline& deadline, int limit_steps) {
  if (!(data.posthoc_param > 0)) return;
  const std::vector<double> xs = data.stored_row(x);  // the query as dice-ml holds it
  for (auto& cf : cfs) {
    if (deadline.passed()) return;
    const bool row_valid = is_valid(f.predict_proba(cf), target);  // dice-ml's current_pred of the row
    for (std::size_t j : data.posthoc_order) {
      const double diff = xs[j] - cf[j];
      if (diff == 0.0 || !(std::abs(diff) <= data.posthoc_q[j])) continue;  // diff == 0: nothing to move
      if (data.posthoc_algorithm == "binary") {
        binary_search(data, f, xs, target, cf, j, deadline, limit_steps);
      } else {
        linear_search(data, f, xs, target, cf, j, row_valid, deadline, limit_steps);
      }
    }
  }
}

void round_continuous(const DiceData& data, const std::vector<double>& x, std::vector<double>& cf) {
  // Only changed values: rounding an untouched query value (8.33 at precision 1)
  // would report a change the method never made. A CF value equal to the stored
  // (float32) query value is that query value.
  for (std::size_t j : data.continuous) {
    if (cf[j] == x[j] || cf[j] == data.stored(j, x[j])) {
      cf[j] = x[j];
    } else {
      cf[j] = round_to(cf[j], data.precision[j]);
    }
  }
}

QueryResult finish(const DiceData& data, const Context& context, const std::vector<double>& x, int target,
                   std::vector<std::vector<double>> cfs, std::string note) {
  QueryResult result;
  result.target = target;
  const data::Schema& schema = *context.schema;
  std::vector<std::vector<double>> kept;
  for (auto& cf : cfs) {
    enforce_constraints(schema, x, cf);
    if (count_violations(schema, x, cf) == 0) kept.push_back(std::move(cf));
  }
  const std::size_t n_violating = cfs.size() - kept.size();
  std::size_t n_invalid = 0;
  if (!kept.empty()) {
    data::Matrix m(kept.size(), data.d);
    for (std::size_t i = 0; i < kept.size(); ++i) std::copy(kept[i].begin(), kept[i].end(), m.row(i));
    const std::vector<double> p1 = context.f->predict_proba(m);
    for (std::size_t i = 0; i < kept.size(); ++i) {
      if (!is_valid(p1[i], target)) {
        ++n_invalid;
        continue;
      }
      Counterfactual c;
      c.x = std::move(kept[i]);
      c.p1 = p1[i];
      c.valid = true;
      result.cfs.push_back(std::move(c));
    }
  }
  auto add = [&note](const std::string& s) { note += (note.empty() ? "" : "; ") + s; };
  if (n_violating > 0) {
    // An immutable query value outside its permitted range makes every CF violate it.
    std::string why;
    for (std::size_t j = 0; j < data.d; ++j) {
      if (!schema.features[j].immutable || data.in_range(j, x[j])) continue;
      why += (why.empty() ? " (immutable outside its permitted range: " : ", ") + schema.features[j].name;
    }
    add(fmt::format("{} candidate(s) dropped for constraint violations{}", n_violating,
                    why.empty() ? "" : why + ")"));
  }
  if (n_invalid > 0) add(fmt::format("{} invalid candidate(s) dropped", n_invalid));
  if (result.cfs.empty()) add("no counterfactual found");
  result.note = std::move(note);
  return result;
}

TrainPredictions predict_training_rows(const Context& context) {
  TrainPredictions out;
  const std::vector<double> p1 = context.f->predict_proba(*context.train_x);
  for (std::size_t r = 0; r < p1.size(); ++r) out.rows[p1[r] > 0.5 ? 1 : 0].push_back(r);
  return out;
}

std::vector<Neighbour> nearest_rows(const DiceData& data, const data::Matrix& train_x,
                                    const std::vector<std::size_t>& rows, const std::vector<double>& x,
                                    std::size_t k) {
  std::vector<Neighbour> all(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double* r = train_x.row(rows[i]);
    double s = 0.0;
    for (std::size_t j = 0; j < data.d; ++j) {
      if (data.is_categorical[j]) {
        if (r[j] != x[j]) s += 2.0;  // two one-hot columns differ by 1
      } else {
        s += (r[j] - x[j]) * (r[j] - x[j]);
      }
    }
    all[i] = Neighbour{s, rows[i]};
  }
  k = std::min(k, all.size());
  auto less = [](const Neighbour& a, const Neighbour& b) {
    return a.distance < b.distance || (a.distance == b.distance && a.row < b.row);
  };
  std::partial_sort(all.begin(), all.begin() + static_cast<long>(k), all.end(), less);
  all.resize(k);
  for (auto& n : all) n.distance = std::sqrt(n.distance);
  return all;
}

}  // namespace sensecf::cf::dice
