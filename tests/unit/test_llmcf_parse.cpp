// The answer parser: format_answer round trips on the synthetic cohort's schema,
// and a table of tolerated variants, edge cases and garbage on a small schema.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "sensecf/core/random.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/synth.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/parse.h"
#include "cf_cohort.h"
#include "test_util.h"

namespace sensecf::llmcf {
namespace {

data::Dataset cohort() { return test::bounded_cohort(20, 6, 11); }

TEST(LlmcfParse, RoundTripOfTheCohortsRows) {
  const auto d = cohort();
  for (std::size_t r = 0; r < d.size(); ++r) {
    const auto p = parse_answer(d.schema, d.x.row(r), format_answer(d.schema, d.x.row(r)));
    ASSERT_TRUE(p.ok) << "row " << r << ": " << p.error;
    ASSERT_EQ(p.x.size(), d.schema.size());
    for (std::size_t j = 0; j < d.schema.size(); ++j)
      EXPECT_EQ(p.x[j], round_value(d.schema.features[j], d.x.at(r, j)))
          << "row " << r << " " << d.schema.features[j].name;
    EXPECT_EQ(p.immutable_changed, 0);
    EXPECT_TRUE(p.notes.empty() || p.out_of_range > 0) << join(p.notes, "; ");
  }
}

TEST(LlmcfParse, RoundTripOfArbitraryValues) {
  // Negative, large (no thousands separator is written), tiny and long decimals.
  auto d = cohort();
  Rng rng(5);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<double> row(d.x.row(trial % d.size()), d.x.row(trial % d.size()) + d.schema.size());
    for (std::size_t j = 0; j < 8; ++j) row[j] = rng.uniform(-1, 1) * std::pow(10.0, rng.uniform(-3, 6));
    const auto p = parse_answer(d.schema, row.data(), format_answer(d.schema, row.data()));
    ASSERT_TRUE(p.ok) << p.error << "\n" << format_answer(d.schema, row.data());
    for (std::size_t j = 0; j < d.schema.size(); ++j) EXPECT_EQ(p.x[j], round_value(d.schema.features[j], row[j]));
  }
}

// A small schema whose bounds and categories the cases below rely on.
data::Schema small_schema() {
  data::Schema s;
  auto add = [&s](const char* name, const char* unit, double lo, double hi, bool immutable) {
    auto f = test::feature(name);
    f.unit = unit;
    f.lower = lo;
    f.upper = hi;
    f.immutable = immutable;
    s.features.push_back(f);
  };
  add("awake_pct", "%", 0, 40, false);            // 0
  add("deep_pct", "%", 0, 40, false);             // 1
  add("steps_day", "steps", 0, 30000, false);     // 2
  add("glucose_mean", "mg/dL", 50, 300, false);   // 3
  add("delta", "", -10, 10, false);               // 4
  add("age", "years", 40, 90, true);              // 5
  auto cat = [&s](const char* name, std::vector<std::string> categories, std::vector<int> allowed) {
    auto f = test::feature(name);
    f.kind = data::FeatureKind::kCategorical;
    f.immutable = true;
    f.categories = std::move(categories);
    f.allowed = std::move(allowed);
    s.features.push_back(f);
  };
  cat("gender", {"female", "male"}, {0, 1});                          // 6
  cat("medication", {"insulin", "no_medication", "oral"}, {1, 2});   // 7
  return s;
}

const std::vector<double> kFactual = {10, 15, 4500, 130, -2, 61, 0, 1};
const std::vector<double> kAnswer = {8, 18, 6000, 120, -1.5, 61, 0, 1};

// The answer's lines without the tags; text line 1 is "<new>", so kLines[i] is
// text line i + 2.
const std::vector<std::string> kLines = {
    "- awake_pct (%): 8",      "- deep_pct (%): 18", "- steps_day (steps): 6000", "- glucose_mean (mg/dL): 120",
    "- delta: -1.5",           "- age (years): 61",  "- gender: female",          "- medication: no_medication"};

std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}
std::string block(const std::vector<std::string>& lines) { return "<new>\n" + join_lines(lines) + "</new>"; }
// kLines with line i replaced.
std::vector<std::string> with(std::size_t i, const std::string& line) {
  auto l = kLines;
  l[i] = line;
  return l;
}
std::vector<std::string> without(std::size_t i) {
  auto l = kLines;
  l.erase(l.begin() + static_cast<std::ptrdiff_t>(i));
  return l;
}
std::vector<std::string> inserted(std::size_t i, const std::string& line) {
  auto l = kLines;
  l.insert(l.begin() + static_cast<std::ptrdiff_t>(i), line);
  return l;
}

struct Case {
  using Values = std::vector<std::pair<std::size_t, double>>;
  Case(std::string what_, std::string text_, bool ok_, std::string error_, Values values_ = {},
       int immutable_changed_ = 0, int out_of_range_ = 0, std::string note_ = {})
      : what(std::move(what_)), text(std::move(text_)), ok(ok_), error(std::move(error_)),
        values(std::move(values_)), immutable_changed(immutable_changed_), out_of_range(out_of_range_),
        note(std::move(note_)) {}
  std::string what;
  std::string text;
  bool ok;
  std::string error;  // substring of the error (when !ok)
  Values values;      // differences from kAnswer (when ok)
  int immutable_changed;
  int out_of_range;
  std::string note;  // substring of one note
};

std::vector<Case> cases() {
  const std::string base = block(kLines);
  std::string crlf;
  for (char c : base) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  return {
      {"the format itself", base, true, "", {}},
      // Garbage and truncation.
      {"empty", "", false, "empty answer", {}},
      {"blank", "  \n\t\n", false, "empty answer", {}},
      {"only prose", "I am sorry, I cannot help with that.", false,
       "no <new> block and no 'feature: value' line in the answer (it begins 'I am sorry", {}},
      {"empty block", "<new>\n</new>", false, "the <new> block on line 1 has no 'feature: value' line", {}},
      {"no closing tag", "<new>\n" + join_lines(kLines), true, "", {}, 0, 0, "no </new> after the <new> on line 1"},
      {"cut after two lines", "<new>\n" + join_lines({kLines[0], kLines[1]}), false,
       "no value for 'steps_day (steps)', 'glucose_mean (mg/dL)', 'delta'", {}},
      {"cut inside a name", "<new>\n" + kLines[0] + "\n" + kLines[1] + "\n- steps_da", false,
       "no value for 'steps_day (steps)'", {}},
      // Strict names and values.
      {"unknown feature", block(inserted(1, "- sleep_score: 80")), false, "line 3: unknown feature 'sleep_score'", {}},
      {"near miss is no match", block(with(0, "- awake_pc (%): 8")), false, "line 2: unknown feature 'awake_pc (%)'",
       {}},
      {"given twice", block(inserted(8, "- deep_pct (%): 20")), false,
       "line 10: 'deep_pct (%)' given twice with different values (18 on line 3, 20 here)", {}},
      {"given twice alike", block(inserted(8, "- deep_pct: 18.0")), true, "", {}, 0, 0,
       "line 10: 'deep_pct (%)' repeated with the same value"},
      {"missing mutable", block(without(1)), false, "no value for 'deep_pct (%)' in the <new> block", {}},
      {"missing immutable", block(without(6)), true, "", {}, 0, 0,
       "no value for fixed feature 'gender': copied from the factual (female)"},
      {"empty value", block(with(0, "- awake_pct (%):")), false, "line 2: no value for 'awake_pct (%)'", {}},
      {"1.2.3", block(with(0, "- awake_pct (%): 1.2.3")), false,
       "line 2: 'awake_pct (%)' has value '1.2.3', expected a number", {}},
      {"N/A", block(with(1, "- deep_pct (%): N/A")), false, "line 3: 'deep_pct (%)' has value 'N/A', expected a number",
       {}},
      {"NaN", block(with(1, "- deep_pct (%): NaN")), false, "has value 'NaN', expected a number", {}},
      {"inf", block(with(1, "- deep_pct (%): inf")), false, "has value 'inf', expected a number", {}},
      {"-Infinity", block(with(4, "- delta: -Infinity")), false, "has value '-Infinity', expected a number", {}},
      {"exponent", block(with(2, "- steps_day (steps): 6e3")), false, "has value '6e3', expected a number", {}},
      {"explanation after the value", block(with(1, "- deep_pct (%): 18 (was 15)")), false,
       "has value '18 (was 15)', expected a number", {}},
      {"placeholder left", block(with(1, "- deep_pct (%): <number>")), false, "expected a number", {}},
      {"category code", block(with(6, "- gender: 0")), false, "line 8: 'gender' has value '0', expected one of: female, male",
       {}},
      {"unknown category", block(with(6, "- gender: other")), false, "expected one of: female, male", {}},
      {"other unit in the label", block(with(3, "- glucose_mean (mmol/L): 6.7")), false,
       "line 5: 'glucose_mean (mmol/L)' is given in (mmol/L), expected (mg/dL)", {}},
      {"other unit after the value", block(with(3, "- glucose_mean: 6.7 mmol/L")), false,
       "line 5: 'glucose_mean (mg/dL)' has value '6.7 mmol/L' in 'mmol/L', expected 'mg/dL'", {}},
      // Numbers.
      {"negative", block(with(4, "- delta: -3.25")), true, "", {{4, -3.25}}},
      {"leading plus", block(with(4, "- delta: +2")), true, "", {{4, 2}}},
      {"unicode minus", block(with(4, "- delta: \xE2\x88\x92" "4")), true, "", {{4, -4}}},
      {"leading point", block(with(4, "- delta: .5")), true, "", {{4, 0.5}}},
      {"thousands", block(with(2, "- steps_day (steps): 12,345")), true, "", {{2, 12345}}},
      {"thousands and decimals", block(with(2, "- steps_day (steps): 4,500.5")), true, "", {{2, 4500.5}}},
      {"millions", block(with(2, "- steps_day (steps): 1,234,567")), true, "", {{2, 1234567}}, 0, 1},
      {"space as separator", block(with(2, "- steps_day (steps): 4 500")), false,
       "has value '4 500', expected a number", {}},
      {"group of two", block(with(2, "- steps_day (steps): 45,00")), false, "has value '45,00', expected a number", {}},
      {"first group of four", block(with(2, "- steps_day (steps): 4500,000")), false, "expected a number", {}},
      {"trailing comma", block(with(0, "- awake_pct (%): 8,")), true, "", {}},
      // Units, separators, bullets, marks, case.
      {"units after values",
       block({"- awake_pct: 8 %", "- deep_pct: 18%", "- steps_day: 6000 steps", "- glucose_mean: 120 mg/dL",
              "- delta: -1.5", "- age: 61 years", "- gender: female", "- medication: no_medication"}),
       true, "", {}},
      {"unit spelled out", block(with(0, "- awake_pct: 8 percent")), true, "", {}},
      {"unit in another case", block(with(3, "- glucose_mean (MG/DL): 120 mg / dl")), true, "", {}},
      {"separators", block(with(0, "- awake_pct (%) = 8")), true, "", {}},
      {"no space before the unit", block(with(1, "- deep_pct(%) : 18")), true, "", {}},
      {"bullets",
       block({"* awake_pct (%): 8", "\xE2\x80\xA2 deep_pct (%): 18", "1. steps_day (steps): 6000",
              "2) glucose_mean (mg/dL): 120", "delta: -1.5", "  - age (years): 61", "- gender: female",
              "- medication: no_medication"}),
       true, "", {}},
      {"bold", block(with(0, "- **awake_pct (%)**: 8")), true, "", {}},
      {"bold with the colon", block(with(1, "**Modified deep_pct (%):** 18")), true, "", {}},
      {"code marks", block(with(1, "- `deep_pct`: `18`")), true, "", {}},
      {"Modified prefix",
       block({"- Modified awake_pct (%): 8", "- Modified deep_pct (%): 18", "- Modified steps_day (steps): 6000",
              "- Modified glucose_mean (mg/dL): 120", "- Modified delta: -1.5", "- Modified age (years): 61",
              "- Modified gender: female", "- Modified medication: no_medication"}),
       true, "", {}},
      {"case and spaces", block(with(0, "- AWAKE PCT (%): 8")), true, "", {}},
      {"category case and spaces", block(with(7, "- Medication: No Medication")), true, "", {}},
      {"category in quotes", block(with(6, "- gender: \"female\".")), true, "", {}},
      {"upper-case tags", "<NEW>\n" + join_lines(kLines) + "</NEW>", true, "", {}},
      {"tags on the value lines", "<new>" + kLines[0] + "\n" + join_lines(without(0)) + "</new>", true, "",
       {}},
      {"closing tag on the last line", "<new>\n" + join_lines(without(7)) + kLines[7] + "</new>", true, "", {}},
      {"CRLF", crlf, true, "", {}},
      {"code fence in the block", "<new>\n```\n" + join_lines(kLines) + "```\n</new>", true, "", {}, 0, 0,
       "line 2: ignored, not 'feature: value': '```'"},
      // Prose around, blocks, no block.
      {"prose around", "Sure! Here is the counterfactual:\n" + base + "\nThis lowers the stress.", true, "", {}},
      {"line numbers count the prose", "Sure! Here it is:\n" + block(inserted(1, "- sleep_score: 80")), false,
       "line 4: unknown feature 'sleep_score'", {}},
      {"prose heading in the block", "<new>\nCounterfactual:\n" + join_lines(kLines) + "</new>", true, "", {}, 0, 0,
       "line 2: ignored, no value"},
      {"only the first block", base + "\nOr:\n" + block(with(0, "- awake_pct (%): 2")), true, "", {}},
      {"no block", "Here is the modified instance.\nNote: I kept the fixed features.\n" + join_lines(kLines), true,
       "", {}, 0, 0, "no <new> block"},
      {"no block, bad value", "awake_pct: lower\n" + join_lines(without(0)), false,
       "line 1: 'awake_pct (%)' has value 'lower', expected a number", {}},
      // Kept and counted.
      {"changed immutable", block(with(5, "- age (years): 55")), true, "", {{5, 55}}, 1, 0,
       "line 7: fixed feature 'age (years)' changed from 61 to 55"},
      {"out of range", block(with(0, "- awake_pct (%): 55")), true, "", {{0, 55}}, 0, 1,
       "line 2: 'awake_pct (%)' = 55 is outside the permitted range [0, 40]"},
      {"negative out of range", block(with(4, "- delta: -12")), true, "", {{4, -12}}, 0, 1,
       "outside the permitted range [-10, 10]"},
      {"category not allowed and changed", block(with(7, "- medication: insulin")), true, "", {{7, 0}}, 1, 1,
       "line 9: 'medication' = insulin is not among the training values"},
  };
}

TEST(LlmcfParse, EdgeCasesAndGarbage) {
  const auto schema = small_schema();
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.what + ":\n" + c.text);
    const auto p = parse_answer(schema, kFactual.data(), c.text);
    ASSERT_EQ(p.ok, c.ok) << "error: " << p.error;
    if (!c.ok) {
      EXPECT_NE(p.error.find(c.error), std::string::npos) << "error was: " << p.error;
      EXPECT_TRUE(p.x.empty());
      continue;
    }
    EXPECT_TRUE(p.error.empty());
    auto expected = kAnswer;
    if (c.what == "missing immutable") expected[6] = kFactual[6];
    for (const auto& [j, v] : c.values) expected[j] = v;
    ASSERT_EQ(p.x.size(), expected.size());
    for (std::size_t j = 0; j < expected.size(); ++j) EXPECT_EQ(p.x[j], expected[j]) << schema.features[j].name;
    EXPECT_EQ(p.immutable_changed, c.immutable_changed);
    EXPECT_EQ(p.out_of_range, c.out_of_range);
    if (c.note.empty()) continue;
    bool found = false;
    for (const auto& n : p.notes) found = found || n.find(c.note) != std::string::npos;
    EXPECT_TRUE(found) << "no note containing '" << c.note << "'; notes: " << join(p.notes, "; ");
  }
}

}  // namespace
}  // namespace sensecf::llmcf

namespace sensecf::llmcf {
namespace {

// A JSON object answer (a server decoding under answer_json_schema) reads like
// the <new> block, with the same checks.
TEST(LlmcfParse, JsonObjectAnswers) {
  const auto schema = small_schema();
  const std::string json =
      R"({"awake_pct": 8, "deep_pct": 18.0, "steps_day": 6000, "glucose_mean": 120, "delta": -1.5, "age": 61,)"
      R"( "gender": "female", "medication": "no_medication"})";
  for (const std::string& text : {json, "```json\n" + json + "\n```", "  " + json + "\n"}) {
    const auto p = parse_answer(schema, kFactual.data(), text);
    ASSERT_TRUE(p.ok) << p.error << "\n" << text;
    EXPECT_EQ(p.x, kAnswer);
    EXPECT_EQ(p.notes.front(), "a JSON object: read as a <new> block, one line per key");
  }
  // The schema's answer for kFactual parses back to kFactual's rounded values.
  const auto s = answer_json_schema(schema, kFactual.data());
  EXPECT_EQ(s["required"].size(), schema.size());
  EXPECT_EQ(s["properties"]["age"]["enum"], nlohmann::json::array({61.0}));
  EXPECT_EQ(s["properties"]["medication"]["enum"], nlohmann::json::array({"no_medication"}));
  EXPECT_EQ(s["properties"]["glucose_mean"]["minimum"], 50.0);
  EXPECT_EQ(s["properties"]["glucose_mean"]["maximum"], 300.0);

  auto bad = [&](const std::string& text, const std::string& error) {
    const auto p = parse_answer(schema, kFactual.data(), text);
    EXPECT_FALSE(p.ok) << text;
    EXPECT_NE(p.error.find(error), std::string::npos) << p.error;
  };
  bad(R"({"awake_pct": 8, "sleep_score": 3})", "JSON answer: line 3: unknown feature 'sleep_score'");
  bad(R"({"awake_pct": null, "deep_pct": 18})", "JSON answer: line 2");
  // Not an object: read as text (no feature lines there).
  bad("[1, 2, 3]", "no <new> block");
  // Out of range and a changed immutable: counted, as in a block.
  const auto p = parse_answer(schema, kFactual.data(),
                              R"({"awake_pct": 80, "deep_pct": 18, "steps_day": 6000, "glucose_mean": 120,)"
                              R"( "delta": -1.5, "age": 62, "gender": "female", "medication": "no_medication"})");
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.out_of_range, 1);
  EXPECT_EQ(p.immutable_changed, 1);
}

}  // namespace
}  // namespace sensecf::llmcf
