// The answer parser (see llmcf/parse.h; rules in docs/llm-counterfactuals.md).
#include "sensecf/llmcf/parse.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "sensecf/core/strings.h"
#include "sensecf/llmcf/answer.h"

namespace sensecf::llmcf {
namespace {

constexpr std::string_view kBullet = "\xE2\x80\xA2";      // •
constexpr std::string_view kUnicodeMinus = "\xE2\x88\x92";  // −

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// Lower case; runs of spaces and underscores become one '_'; no '_' at the ends.
std::string normalise_name(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ' ' || c == '_' || c == '\t') {
      if (!out.empty() && out.back() != '_') out += '_';
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

// Lower case without spaces: "mg/dL" = "mg / dl".
std::string normalise_unit(std::string_view s) {
  std::string out;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool unit_matches(const data::Feature& f, std::string_view written) {
  const std::string w = normalise_unit(written);
  return w == normalise_unit(f.unit) || (f.unit == "%" && w == "percent");
}

// One "name: value" line, cleaned.
struct Entry {
  std::string written;  // the name as written (bullets and marks removed)
  std::string key;      // normalise_name of the name without prefix and unit
  std::string unit;     // "(...)" after the name, without parentheses; empty if none
  std::string value;
};

std::optional<Entry> split_entry(std::string_view raw) {
  std::string s;
  for (char c : raw)
    if (c != '*' && c != '`') s += c;
  std::string_view v = trim(s);
  if (starts_with(v, kBullet)) {
    v = trim(v.substr(kBullet.size()));
  } else if (!v.empty() && v[0] == '-') {
    v = trim(v.substr(1));
  } else {
    std::size_t i = 0;
    while (i < v.size() && is_digit(v[i])) ++i;
    if (i > 0 && i + 1 < v.size() && (v[i] == '.' || v[i] == ')') && std::isspace(static_cast<unsigned char>(v[i + 1])))
      v = trim(v.substr(i + 1));
  }
  const std::size_t sep = v.find_first_of(":=");
  if (sep == std::string_view::npos) return std::nullopt;
  Entry e;
  std::string_view name = trim(v.substr(0, sep));
  e.written = std::string(name);
  e.value = std::string(trim(v.substr(sep + 1)));
  if (name.size() > 9 && to_lower(name.substr(0, 8)) == "modified" && (name[8] == ' ' || name[8] == '_'))
    name = trim(name.substr(9));
  if (!name.empty() && name.back() == ')') {
    const std::size_t open = name.rfind('(');
    if (open != std::string_view::npos) {
      e.unit = std::string(trim(name.substr(open + 1, name.size() - open - 2)));
      name = trim(name.substr(0, open));
    }
  }
  e.key = normalise_name(name);
  return e;
}

// [+-] digits (or comma groups of three) [. digits]; `rest` gets what follows.
std::optional<double> read_number(std::string_view s, std::string_view* rest) {
  std::string text;
  std::size_t i = 0;
  if (starts_with(s, kUnicodeMinus)) {
    text += '-';
    i = kUnicodeMinus.size();
  } else if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    if (s[0] == '-') text += '-';
    i = 1;
  }
  std::size_t first_group = 0;
  while (i < s.size() && is_digit(s[i])) text += s[i++], ++first_group;
  bool grouped = false;
  while (first_group > 0 && i + 3 < s.size() && s[i] == ',' && is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
         is_digit(s[i + 3]) && (i + 4 == s.size() || !is_digit(s[i + 4]))) {
    text.append(s.substr(i + 1, 3));
    i += 4;
    grouped = true;
  }
  if (grouped && first_group > 3) return std::nullopt;  // "4500,000"
  bool fraction = false;
  if (i + 1 < s.size() && s[i] == '.' && is_digit(s[i + 1])) {
    text += s[i++];
    while (i < s.size() && is_digit(s[i])) text += s[i++];
    fraction = true;
  }
  if (first_group == 0 && !fraction) return std::nullopt;
  *rest = trim(s.substr(i));
  return std::strtod(text.c_str(), nullptr);
}

std::string_view strip_trailing(std::string_view s, std::string_view chars) {
  while (!s.empty() && chars.find(s.back()) != std::string_view::npos) s.remove_suffix(1);
  return trim(s);
}

// The value of one line for feature f, or an error message (without the line).
struct Value {
  double v = 0;
  std::string error;
};

Value read_value(const data::Feature& f, std::string_view written) {
  const std::string label = feature_label(f);
  if (f.is_categorical()) {
    std::string_view s = strip_trailing(written, ".,;");
    if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
      s = trim(s.substr(1, s.size() - 2));
    const std::string key = normalise_name(s);
    for (std::size_t c = 0; c < f.categories.size(); ++c)
      if (normalise_name(f.categories[c]) == key) return {static_cast<double>(c), {}};
    return {0, fmt::format("'{}' has value '{}', expected one of: {}", label, written, join(f.categories, ", "))};
  }
  std::string_view rest;
  const auto v = read_number(strip_trailing(written, ",;"), &rest);
  if (!v) return {0, fmt::format("'{}' has value '{}', expected a number", label, written)};
  if (!std::isfinite(*v))  // more digits than a double holds
    return {0, fmt::format("'{}' has value '{}', a number too large to represent", label, written)};
  if (!rest.empty() && rest.front() == '(' && rest.back() == ')') rest = trim(rest.substr(1, rest.size() - 2));
  if (rest.empty() || unit_matches(f, rest)) return {*v, {}};
  if (std::any_of(rest.begin(), rest.end(), [](char c) { return is_digit(c) || c == '.' || c == ','; }))
    return {0, fmt::format("'{}' has value '{}', expected a number", label, written)};
  return {0, fmt::format("'{}' has value '{}' in '{}', expected {}", label, written, rest,
                         f.unit.empty() ? std::string("no unit") : "'" + f.unit + "'")};
}

bool differs(double a, double b) { return std::abs(a - b) > 1e-9 * std::max(1.0, std::abs(a)); }

struct Seen {
  double v = 0;
  long line = 0;
};

// A JSON object answer (a server decoding under answer_json_schema, or a
// model that prefers JSON), optionally in a ```json fence, as the equivalent
// <new> block; nullopt when the text is no JSON object.
std::optional<std::string> json_as_block(std::string_view text) {
  std::string_view t = trim(text);
  if (t.rfind("```", 0) == 0) {
    const auto nl = t.find('\n');
    const auto close = t.rfind("```");
    if (nl == std::string_view::npos || close <= nl) return std::nullopt;
    t = trim(t.substr(nl + 1, close - nl - 1));
  }
  if (t.empty() || t.front() != '{' || t.back() != '}') return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(t);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  if (!j.is_object()) return std::nullopt;
  std::string block = std::string(kOpenTag) + "\n";
  for (const auto& [key, value] : j.items()) {
    std::string v;
    if (value.is_string()) {
      v = value.get<std::string>();
    } else if (value.is_number_integer()) {
      v = std::to_string(value.get<long long>());
    } else if (value.is_number()) {
      v = fmt::format("{:.6f}", value.get<double>());
      while (v.back() == '0') v.pop_back();
      if (v.back() == '.') v.pop_back();
    } else {
      v = value.dump();  // null, bool, array, object: the parser says why it is no value
    }
    block += "- " + key + ": " + v + "\n";
  }
  return block + kCloseTag;
}

}  // namespace

ParsedAnswer parse_answer(const data::Schema& schema, const double* factual, std::string_view text) {
  if (const auto block = json_as_block(text)) {
    ParsedAnswer out = parse_answer(schema, factual, *block);
    out.notes.insert(out.notes.begin(), "a JSON object: read as a <new> block, one line per key");
    if (!out.ok) out.error = "JSON answer: " + out.error;
    return out;
  }
  ParsedAnswer out;
  auto fail = [&out](std::string message) {
    out.ok = false;
    out.x.clear();
    out.error = std::move(message);
    return out;
  };
  if (trim(text).empty()) return fail("empty answer");

  std::map<std::string, std::size_t> index;
  std::vector<std::string> names;
  for (std::size_t j = 0; j < schema.size(); ++j) {
    index[normalise_name(schema.features[j].name)] = j;
    names.push_back(schema.features[j].name);
  }

  // The region to read: the first <new> block, or the whole text.
  const std::string lower = to_lower(text);
  std::size_t begin = 0, end = text.size();
  const std::size_t open = lower.find(kOpenTag);
  const bool in_block = open != std::string::npos;
  long line_no = 1;  // of the line being read, in the whole text
  if (in_block) {
    begin = open + std::string_view(kOpenTag).size();
    line_no += static_cast<long>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(open), '\n'));
    const std::size_t close = lower.find(kCloseTag, begin);
    if (close == std::string::npos) {
      out.notes.push_back(fmt::format("no {} after the {} on line {}: read to the end of the answer", kCloseTag,
                                      kOpenTag, line_no));
    } else {
      end = close;
    }
  } else {
    out.notes.push_back(fmt::format("no {} block: read the 'feature: value' lines of the answer", kOpenTag));
  }

  const long first_line = line_no;
  std::vector<std::optional<Seen>> seen(schema.size());
  const std::string_view region = text.substr(begin, end - begin);
  std::size_t pos = 0;
  for (;; ++line_no) {
    const std::size_t nl = region.find('\n', pos);
    const std::string_view raw = region.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl + 1;
    const std::string where = fmt::format("line {}", line_no);
    const auto entry = split_entry(raw);
    if (!entry) {
      if (in_block && !trim(raw).empty())
        out.notes.push_back(fmt::format("{}: ignored, not 'feature: value': '{}'", where, trim(raw)));
    } else if (const auto it = index.find(entry->key); it == index.end()) {
      if (in_block && !entry->value.empty())
        return fail(fmt::format("{}: unknown feature '{}' (the features are: {})", where, entry->written,
                                join(names, ", ")));
      if (in_block)
        out.notes.push_back(fmt::format("{}: ignored, no value: '{}'", where, trim(raw)));
    } else {
      const std::size_t j = it->second;
      const data::Feature& f = schema.features[j];
      if (!entry->unit.empty() && !unit_matches(f, entry->unit))
        return fail(fmt::format("{}: '{}' is given in ({}), expected {}", where, entry->written, entry->unit,
                                f.unit.empty() ? std::string("no unit") : "(" + f.unit + ")"));
      if (entry->value.empty()) return fail(fmt::format("{}: no value for '{}'", where, feature_label(f)));
      const Value value = read_value(f, entry->value);
      if (!value.error.empty()) return fail(fmt::format("{}: {}", where, value.error));
      if (seen[j]) {
        if (differs(seen[j]->v, value.v))
          return fail(fmt::format("{}: '{}' given twice with different values ({} on line {}, {} here)", where,
                                  feature_label(f), format_value(f, seen[j]->v), seen[j]->line,
                                  format_value(f, value.v)));
        out.notes.push_back(fmt::format("{}: '{}' repeated with the same value", where, feature_label(f)));
      } else {
        seen[j] = Seen{value.v, line_no};
      }
    }
    if (nl == std::string_view::npos) break;
  }

  if (std::none_of(seen.begin(), seen.end(), [](const auto& s) { return s.has_value(); })) {
    const std::string start(trim(text.substr(0, 60)));
    return fail(in_block ? fmt::format("the {} block on line {} has no 'feature: value' line", kOpenTag, first_line)
                         : fmt::format("no {} block and no 'feature: value' line in the answer (it begins '{}')",
                                       kOpenTag, start));
  }
  std::vector<std::string> missing;
  for (std::size_t j = 0; j < schema.size(); ++j)
    if (!seen[j] && !schema.features[j].immutable) missing.push_back("'" + feature_label(schema.features[j]) + "'");
  if (!missing.empty())
    return fail(fmt::format("no value for {}{}", join(missing, ", "), in_block ? " in the <new> block" : ""));

  out.x.assign(schema.size(), 0.0);
  for (std::size_t j = 0; j < schema.size(); ++j) {
    const data::Feature& f = schema.features[j];
    const std::string label = feature_label(f);
    if (!seen[j]) {
      out.x[j] = factual[j];
      out.notes.push_back(fmt::format("no value for fixed feature '{}': copied from the factual ({})", label,
                                      format_value(f, factual[j])));
      continue;
    }
    const double v = seen[j]->v;
    const std::string where = fmt::format("line {}", seen[j]->line);
    out.x[j] = v;
    if (f.immutable && differs(v, factual[j]) && differs(v, round_value(f, factual[j]))) {
      ++out.immutable_changed;
      out.notes.push_back(fmt::format("{}: fixed feature '{}' changed from {} to {}", where, label,
                                      format_value(f, factual[j]), format_value(f, v)));
    }
    if (f.is_categorical()) {
      if (std::find(f.allowed.begin(), f.allowed.end(), static_cast<int>(v)) == f.allowed.end()) {
        ++out.out_of_range;
        out.notes.push_back(
            fmt::format("{}: '{}' = {} is not among the training values", where, label, format_value(f, v)));
      }
    } else if (v < f.lower - 1e-9 || v > f.upper + 1e-9) {
      ++out.out_of_range;
      out.notes.push_back(fmt::format("{}: '{}' = {} is outside the permitted range [{}, {}]", where, label,
                                      format_value(f, v), format_value(f, f.lower), format_value(f, f.upper)));
    }
  }
  out.ok = true;
  return out;
}

}  // namespace sensecf::llmcf
