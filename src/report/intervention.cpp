// A Table II-style intervention narrative (intervention.md): what one method's
// CF asks a high-stress test patient to change.
//
// The patient: a table3 query (scenario full) that f predicts as class 1 (high
// stress; target 0) with a valid CF (found = 1, valid = 1, all values finite).
// The method: the LLM method with the highest mean class-1 validity (over all
// queries, Table III's "Class 1 Validity") among those that have such a query;
// when no LLM method has one, the best baseline by the same rule (ties: report
// order). Its smallest seed with such a query; the first such query of that task.
//
// For every feature the CF changes (the change rule of the sparsity metric):
// "Increase deep_pct (%) from 12.5 to 18.0" (a `_pct` name gets "(%)"; values
// with the fewest decimals, at least one, that tell them apart; categorical
// features are stored as codes). The immutable features (the config's
// `[data] immutable`, else the features no table3 CF of any method changes) are
// listed as unchanged. f's P(y = 1) after is CfArrays::probability; the value
// before is not in the results file, only f's class. An LLM's raw answer, when
// stored, is quoted.
//
// Not here: Table III's numbers (table3.cpp).
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "sensecf/core/vocabulary.h"
#include "sensecf/report/methods.h"
#include "sensecf/report/tables.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {
namespace {

bool changed(double cf, double x) { return std::fabs(cf - x) > 1e-9 * std::max(1.0, std::fabs(x)); }

bool integral(double v) { return std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15; }

// "12.5" and "18.0": both with the fewest decimals (>= 1) that tell them apart;
// integers as integers.
std::pair<std::string, std::string> format_pair(double a, double b) {
  if (integral(a) && integral(b)) return {fmt::format("{:.0f}", a), fmt::format("{:.0f}", b)};
  int decimals = 1;
  while (decimals < 6 && fmt::format("{:.{}f}", a, decimals) == fmt::format("{:.{}f}", b, decimals)) ++decimals;
  return {fmt::format("{:.{}f}", a, decimals), fmt::format("{:.{}f}", b, decimals)};
}

std::string format_value(double v) { return integral(v) ? fmt::format("{:.0f}", v) : fmt::format("{:.2f}", v); }

std::string feature_title(const std::string& name) {
  const std::string suffix = "_pct";
  const bool percent = name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  return percent ? name + " (%)" : name;
}

struct Choice {
  const store::CfArrays* task = nullptr;
  std::size_t query = 0;
  double validity = kNaN;  // mean class-1 validity over seeds
};

bool qualifies(const store::CfArrays& t, std::size_t q) {
  return t.target[q] == 0 && t.found[q] == 1 && t.valid[q] == 1 &&
         std::all_of(&t.counterfactual[q * t.d], &t.counterfactual[q * t.d] + t.d, [](double v) { return std::isfinite(v); });
}

}  // namespace

void write_intervention(ReportContext& context) {
  const auto& results = context.results();
  std::vector<const store::CfArrays*> tasks;
  for (const auto& c : results.counterfactuals) {
    if (c.purpose == vocab::kTable3 && c.scenario == vocab::kFull) tasks.push_back(&c);
  }
  // Class-1 validity (over all queries) per method, mean over seeds.
  std::map<std::string, std::map<long long, double>> validity;
  for (const auto& r : results.cf) {
    if (r.purpose == vocab::kTable3 && r.scenario == vocab::kFull && r.factual_class == 1) validity[r.method][r.seed] = r.validity;
  }
  // Per method: the smallest seed's first qualifying query.
  std::map<std::string, Choice> candidates;
  for (const auto* t : tasks) {
    for (std::size_t q = 0; q < t->n; ++q) {
      if (!qualifies(*t, q)) continue;
      auto& c = candidates[t->method];
      if (!c.task || t->seed < c.task->seed) c = {t, q, summarise(validity[t->method]).mean};
      break;
    }
  }
  std::vector<std::string> present;
  for (const auto& [method, c] : candidates) present.push_back(method);
  const auto methods = context.order(present);
  if (methods.empty()) {
    context.note("Intervention narrative skipped: no table3 CF of a test row that f predicts as class 1 (high stress) "
                 "is valid" + std::string(tasks.empty() ? " (the results have no table3 CFs)." : "."));
    return;
  }
  std::optional<std::string> best;
  for (bool llm : {true, false}) {
    for (const auto& m : methods) {
      if (is_llm_method(m) != llm) continue;
      const double v = candidates[m].validity;
      if (!best || (std::isfinite(v) && !(candidates[*best].validity >= v))) best = m;
    }
    if (best) break;
  }
  const Choice& choice = candidates[*best];
  const store::CfArrays& t = *choice.task;
  const std::size_t q = choice.query, d = t.d;
  const double* x = &t.factual[q * d];
  const double* cf = &t.counterfactual[q * d];

  // Immutable features: the config's, else those no table3 CF changes.
  std::set<std::string> immutable(context.immutable_features().begin(), context.immutable_features().end());
  const bool inferred = immutable.empty();
  if (inferred) {
    std::vector<bool> ever(d, false);
    for (const auto* o : tasks) {
      if (o->features != t.features) continue;
      for (std::size_t i = 0; i < o->n; ++i) {
        if (!o->found[i]) continue;
        for (std::size_t j = 0; j < d; ++j) {
          const double v = o->counterfactual[i * d + j];
          ever[j] = ever[j] || (std::isfinite(v) && changed(v, o->factual[i * d + j]));
        }
      }
    }
    for (std::size_t j = 0; j < d; ++j) {
      if (!ever[j]) immutable.insert(t.features[j]);
    }
  }

  const std::string label = method_label(t.method);
  const bool llm = is_llm_method(t.method);
  std::string out = "# Intervention for a high-stress test patient\n\n";
  const std::string validity_text =
      std::isfinite(choice.validity) ? fmt::format("{:.2f}", choice.validity) : "not recorded";
  out += fmt::format("In the style of the paper's Table II. Method: **{}** (`{}`), {} (over all "
                     "queries: {}); seed {}, test row {} (query {} of the task).\n\n",
                     markdown_escape(label), t.method,
                     llm ? "the LLM method with the highest class-1 validity"
                         : "the baseline with the highest class-1 validity; no LLM method has a valid CF for such a "
                           "patient",
                     validity_text, t.seed, t.query_row[q], q);
  out += "## Condition\n\nf predicts class 1 (high stress) for this patient: ";
  for (std::size_t j = 0; j < d; ++j) out += fmt::format("{}{} = {}", j ? ", " : "", markdown_escape(t.features[j]), format_value(x[j]));
  out += ".\n\n## Intervention\n\n";
  std::vector<std::string> unchanged_immutable, unchanged_other;
  std::size_t n_changed = 0;
  for (std::size_t j = 0; j < d; ++j) {
    const std::string name = markdown_escape(feature_title(t.features[j]));
    if (changed(cf[j], x[j])) {
      const auto [before, after] = format_pair(x[j], cf[j]);
      out += fmt::format("- {} {} from {} to {}\n", cf[j] > x[j] ? "Increase" : "Decrease", name, before, after);
      ++n_changed;
    } else if (immutable.count(t.features[j])) {
      unchanged_immutable.push_back(fmt::format("{} = {}", markdown_escape(t.features[j]), format_value(x[j])));
    } else {
      unchanged_other.push_back(markdown_escape(t.features[j]));
    }
  }
  if (n_changed == 0) out += "- (no feature changed)\n";
  auto join_list = [](const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s;
  };
  out += "\n";
  if (!unchanged_immutable.empty()) {
    out += fmt::format("Immutable features, unchanged{}: {}.\n\n",
                       inferred ? " (no CF of any method changes them; the stored config names none)" : "",
                       join_list(unchanged_immutable));
  }
  if (!unchanged_other.empty()) out += "Other features, unchanged: " + join_list(unchanged_other) + ".\n\n";
  const double p_after = t.probability[q];
  out += fmt::format("f's P(high stress): before — not stored in the results file (f predicts class 1); after: {} "
                     "(class 0: the CF is valid).\n",
                     std::isfinite(p_after) ? fmt::format("{:.2f}", p_after) : "not recorded");
  if (q < t.answer.size() && !t.answer[q].empty()) {
    std::string answer = t.answer[q];
    for (std::size_t pos = 0; (pos = answer.find("```", pos)) != std::string::npos; pos += 4) answer.replace(pos, 3, "` ``");
    out += "\n## The model's answer\n\n```text\n" + answer + (answer.back() == '\n' ? "" : "\n") + "```\n";
  }
  context.write("intervention.md", out,
                fmt::format("Intervention narrative (Table II style): {}'s CF for a high-stress test patient", label));
}

}  // namespace sensecf::report
