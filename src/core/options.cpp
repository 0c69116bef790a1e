// Options: declaration table, INI reader, Boost.Program_options command line,
// precedence (defaults < file < CLI), validation and the effective configuration.
#include <algorithm>
#include <filesystem>
#include "sensecf/core/options.h"

#include <spdlog/fmt/fmt.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"

namespace po = boost::program_options;

namespace sensecf {

const char* to_string(OptionSource source) {
  switch (source) {
    case OptionSource::kDefault: return "default";
    case OptionSource::kConfigFile: return "config file";
    case OptionSource::kCommandLine: return "command line";
    case OptionSource::kSaved: return "saved with the model";
  }
  return "?";
}

namespace {
// Option names are compared with '-' and '_' treated alike.
std::string canonical(std::string name) {
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}
}  // namespace

Options::Options(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

Options::Entry& Options::declare(const std::string& key, const std::string& help,
                                 const std::string& alias) {
  if (find(key) || (aliases_enabled_ && !alias.empty() && find(alias))) {
    throw Error("option '" + key + "' declared twice (internal error)");
  }
  Entry e;
  e.key = canonical(key);
  e.alias = aliases_enabled_ ? alias : std::string();
  e.help = help;
  entries_.push_back(std::move(e));
  return entries_.back();
}

void Options::erase(const std::string& key) {
  const std::string k = canonical(key);
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == k; }),
                 entries_.end());
}

void Options::set_alias(const std::string& key, const std::string& alias) {
  Entry* entry = find(key);
  if (!entry) throw Error("set_alias: no option '" + key + "' (internal error)");
  for (const auto& e : entries_) {
    if (e.key != entry->key && canonical(e.alias) == canonical(alias)) {
      throw Error("set_alias: '" + alias + "' is already the alias of " + e.key + " (internal error)");
    }
  }
  entry->alias = alias;
}

bool Options::set_if_default(const std::string& key, const std::string& value, const std::string& where) {
  Entry* entry = find(key);
  if (!entry || entry->source != OptionSource::kDefault) return false;
  apply(*entry, value, OptionSource::kSaved, where);
  return true;
}

Options& Options::choices(std::vector<std::string> allowed) {
  entries_.back().choices = std::move(allowed);
  return *this;
}

Options& Options::not_hashed() {
  entries_.back().hashed = false;
  return *this;
}

void Options::add_check(std::function<void()> check) { checks_.push_back(std::move(check)); }

Options::Entry* Options::find(const std::string& name) {
  const std::string c = canonical(name);
  for (auto& e : entries_) {
    if (e.key == c || (!e.alias.empty() && canonical(e.alias) == c)) return &e;
  }
  return nullptr;
}

std::string Options::suggest(const std::string& name) const {
  std::vector<std::string> names;
  for (const auto& e : entries_) {
    names.push_back(e.key);
    if (!e.alias.empty()) names.push_back(e.alias);
  }
  names.push_back("config");
  const std::string best = closest_match(canonical(name), names);
  return best.empty() ? "see `sensecf " + command_ + " --help` for the list of options"
                      : "did you mean '--" + best + "'?";
}

void Options::apply(Entry& entry, const std::string& value, OptionSource source,
                    const std::string& where) {
  if (!entry.choices.empty() &&
      std::find(entry.choices.begin(), entry.choices.end(), value) == entry.choices.end()) {
    const std::string best = closest_match(value, entry.choices);
    throw UsageError(fmt::format("{}: option '{}' must be one of {}, got '{}'", where, entry.key,
                                 join(entry.choices, "|"), value),
                     best.empty() ? entry.help : "did you mean '" + best + "'?");
  }
  try {
    entry.set(value);
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("{}: option '{}': {}, got '{}'", where, entry.key, e.what(), value),
                     entry.help);
  }
  entry.source = source;
}

// INI: "[section]" lines, "key = value" lines, '#' or ';' comment lines.
// A '#' or ';' after whitespace starts a comment on a value's line too (as in
// the effective configuration sensecf writes: "seed = 42   # default"); a value
// that holds " #" itself is written in double quotes: path = "data #2.csv".
namespace {
std::string ini_value(std::string_view text, const std::string& where) {
  text = trim(text);
  if (!text.empty() && text.front() == '"') {
    const auto close = text.find('"', 1);
    const auto rest = close == std::string_view::npos ? text : trim(text.substr(close + 1));
    if (close == std::string_view::npos || (!rest.empty() && rest.front() != '#' && rest.front() != ';')) {
      throw UsageError(where + ": a value that opens a double quote must end with one (a comment may follow)",
                       "write path = \"data #2.csv\"; quotes are only needed around a value holding ' #' or ' ;'");
    }
    return std::string(text.substr(1, close - 1));
  }
  for (std::size_t i = 0; i < text.size(); ++i) {  // "key =   # comment": an empty value
    if ((text[i] == '#' || text[i] == ';') && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) {
      return std::string(trim(text.substr(0, i)));
    }
  }
  return std::string(text);
}
}  // namespace

void Options::read_config_file(const std::string& path) {
  std::error_code ec;  // a path the OS refuses (too long, ...) is reported by the open below
  if (std::filesystem::is_directory(path, ec)) {
    throw UsageError("--config '" + path + "' is a directory, not a config file",
                     "pass the INI file itself, e.g. --config configs/quickstart.ini");
  }
  std::ifstream in(path);
  if (!in) {
    throw UsageError("cannot open config file '" + path + "'", "check the path given to --config");
  }
  read_config(in, path);
}

void Options::read_config(std::istream& in, const std::string& path) {
  config_files_.push_back(path);
  std::string section;
  std::string raw;
  long line_no = 0;
  std::map<std::string, long> seen;
  while (std::getline(in, raw)) {
    ++line_no;
    if (line_no == 1 && raw.rfind("\xEF\xBB\xBF", 0) == 0) raw.erase(0, 3);  // a UTF-8 byte-order mark (CRLF: trim)
    const std::string where = SourceLocation{path, line_no, 0}.str();
    const std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3) {
        throw UsageError(where + ": malformed section header '" + std::string(line) + "'",
                         "a section looks like [data]");
      }
      section = std::string(trim(line.substr(1, line.size() - 2)));
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      throw UsageError(where + ": expected 'key = value', got '" + std::string(line) + "'");
    }
    const std::string name = std::string(trim(line.substr(0, eq)));
    const std::string value = ini_value(line.substr(eq + 1), where);
    const std::string key = canonical(section.empty() ? name : section + "." + name);
    Entry* entry = nullptr;
    for (auto& e : entries_)
      if (e.key == key) entry = &e;
    if (!entry) {
      throw UsageError(fmt::format("{}: unknown key '{}'{} for `sensecf {}`", where, name,
                                   section.empty() ? "" : " in section [" + section + "]", command_),
                       suggest(key));
    }
    if (auto it = seen.find(key); it != seen.end()) {
      throw UsageError(fmt::format("{}: key '{}' repeats line {}", where, key, it->second));
    }
    seen[key] = line_no;
    apply(*entry, value, OptionSource::kConfigFile, where);
  }
}

std::vector<std::string> Options::normalise_args(const std::vector<std::string>& args) const {
  std::vector<std::string> out;
  const bool has_log_level = std::any_of(entries_.begin(), entries_.end(), [](const Entry& e) { return e.key == "log.level"; });
  for (const auto& a : args) {
    // -v / --verbose and -q / --quiet: the log level of every command.
    if (has_log_level && (a == "-v" || a == "--verbose")) {
      out.push_back("--log.level=debug");
    } else if (has_log_level && (a == "-q" || a == "--quiet")) {
      out.push_back("--log.level=warn");
    } else if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      const auto eq = a.find('=');
      const std::string name = canonical(a.substr(2, eq == std::string::npos ? eq : eq - 2));
      std::string key = name;
      for (const auto& e : entries_)
        if (!e.alias.empty() && canonical(e.alias) == name) key = e.key;
      out.push_back("--" + key + (eq == std::string::npos ? "" : a.substr(eq)));
    } else {
      out.push_back(a);
    }
  }
  return out;
}

bool Options::parse(const std::vector<std::string>& args) {
  po::options_description desc;
  desc.add_options()("help,h", "show this help")("config", po::value<std::vector<std::string>>(),
                                                 "INI config file(s)");
  for (const auto& e : entries_) {
    auto* value = po::value<std::string>();
    if (e.is_flag) value->implicit_value("true");
    desc.add_options()(e.key.c_str(), value, e.help.c_str());
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(normalise_args(args)).options(desc).run(), vm);
  } catch (const po::unknown_option& e) {
    std::string name = e.get_option_name();
    while (!name.empty() && name.front() == '-') name.erase(0, 1);
    throw UsageError("unknown option '" + e.get_option_name() + "' for `sensecf " + command_ + "`",
                     suggest(name));
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (in `sensecf " + command_ + "`)",
                     "see `sensecf " + command_ + " --help`");
  }
  if (vm.count("help")) {
    std::cout << help();
    return false;
  }
  if (vm.count("config")) {
    for (const auto& f : vm["config"].as<std::vector<std::string>>()) read_config_file(f);
  } else if (!default_config_.second.empty()) {
    std::istringstream in(default_config_.second);
    read_config(in, default_config_.first);
  }
  for (auto& e : entries_) {
    if (vm.count(e.key)) {
      apply(e, vm[e.key].as<std::string>(), OptionSource::kCommandLine, "--" + e.key);
    }
  }
  for (const auto& check : checks_) check();
  return true;
}

std::string Options::help() const {
  std::ostringstream out;
  out << "Usage: sensecf " << command_ << " [options]\n\n" << summary_ << "\n\n";
  out << "Every option is also an INI key: `--data.label y` is `label = y` under [data] in a\n"
         "file given with --config. Precedence: defaults < config file < command line.\n";
  std::map<std::string, po::options_description> groups;
  std::vector<std::string> order;
  for (const auto& e : entries_) {
    const auto dot = e.key.find('.');
    const std::string section = dot == std::string::npos ? "general" : e.key.substr(0, dot);
    if (!groups.count(section)) {
      groups.emplace(section, po::options_description("[" + section + "] options", 100, 50));
      order.push_back(section);
    }
    std::string text = e.help;
    if (!e.choices.empty()) text += " {" + join(e.choices, "|") + "}";
    if (!e.alias.empty()) text += " (short: --" + e.alias + ")";
    auto* value = po::value<std::string>()->default_value(e.default_text, e.default_text.empty() ? "\"\"" : e.default_text);
    if (e.is_flag) value->implicit_value("true");
    groups.at(section).add_options()(e.key.c_str(), value, text.c_str());
  }
  for (const auto& s : order) out << "\n" << groups.at(s);
  out << "\n[common]\n  --config FILE       INI config file(s); later files override earlier ones\n"
         "  -h [ --help ]       show this help\n";
  return out.str();
}

std::string Options::effective_ini() const {
  std::ostringstream out;
  out << "# effective configuration of `sensecf " << command_ << "`\n";
  out << "# config hash " << config_hash() << "\n";
  std::string current;
  for (const auto& e : entries_) {
    const auto dot = e.key.find('.');
    const std::string section = dot == std::string::npos ? "" : e.key.substr(0, dot);
    const std::string name = dot == std::string::npos ? e.key : e.key.substr(dot + 1);
    if (section != current) {
      out << "[" << section << "]\n";
      current = section;
    }
    const std::string line = name + " = " + e.get();
    out << line << std::string(line.size() < 40 ? 40 - line.size() : 1, ' ') << "# "
        << to_string(e.source) << "\n";
  }
  return out.str();
}

std::map<std::string, std::string> Options::hashed_values() const {
  std::map<std::string, std::string> sorted;
  for (const auto& e : entries_)
    if (e.hashed) sorted[e.key] = e.get();
  return sorted;
}

std::string Options::config_hash() const {
  std::string text = command_ + "\n";
  for (const auto& [k, v] : hashed_values()) text += k + "=" + v + "\n";
  return fnv1a_hex(text);
}

// --- value conversions ---------------------------------------------------------
namespace detail {

void parse_value(const std::string& text, std::string* out) { *out = text; }

void parse_value(const std::string& text, bool* out) {
  const std::string t = to_lower(trim(text));
  if (t == "true" || t == "1" || t == "yes" || t == "on") {
    *out = true;
  } else if (t == "false" || t == "0" || t == "no" || t == "off") {
    *out = false;
  } else {
    throw std::invalid_argument("expected true/false");
  }
}

template <class I>
static void parse_integer(const std::string& text, I* out) {
  const auto v = parse_int(text);
  if (!v) throw std::invalid_argument("expected a whole number");
  // I is signed (int, long, long long): both bounds compare as long long.
  if (*v < static_cast<long long>(std::numeric_limits<I>::min()) ||
      *v > static_cast<long long>(std::numeric_limits<I>::max())) {
    throw std::invalid_argument(fmt::format("expected a whole number from {} to {}", std::numeric_limits<I>::min(),
                                            std::numeric_limits<I>::max()));
  }
  *out = static_cast<I>(*v);
}
void parse_value(const std::string& text, int* out) { parse_integer(text, out); }
void parse_value(const std::string& text, long* out) { parse_integer(text, out); }
void parse_value(const std::string& text, long long* out) { parse_integer(text, out); }
void parse_value(const std::string& text, unsigned long* out) {
  const auto v = parse_int(text);
  if (!v) throw std::invalid_argument("expected a whole number");
  if (*v < 0) throw std::invalid_argument("expected a whole number >= 0");
  *out = static_cast<unsigned long>(*v);
}

void parse_value(const std::string& text, double* out) {
  const auto v = parse_double(text);
  if (!v || !std::isfinite(*v)) throw std::invalid_argument("expected a finite number");
  *out = *v;
}

// Lists: "a,b,c" or "a b c".
static std::vector<std::string> list_items(const std::string& text) {
  std::string t = text;
  for (char& c : t)
    if (c == ' ' || c == '\t') c = ',';
  std::vector<std::string> out;
  for (auto& item : split_list(t, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}
void parse_value(const std::string& text, std::vector<std::string>* out) { *out = list_items(text); }
template <class T>
static void parse_number_list(const std::string& text, std::vector<T>* out, const char* what) {
  std::vector<T> v;
  for (const auto& item : list_items(text)) {
    T x{};
    try {
      parse_value(item, &x);
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument(std::string("expected a list of ") + what + " ('" + item + "' is not one)");
    }
    v.push_back(x);
  }
  *out = std::move(v);
}
void parse_value(const std::string& text, std::vector<double>* out) { parse_number_list(text, out, "numbers"); }
void parse_value(const std::string& text, std::vector<int>* out) { parse_number_list(text, out, "integers"); }

std::string format_value(const std::string& v) { return v; }
std::string format_value(bool v) { return v ? "true" : "false"; }
std::string format_value(int v) { return std::to_string(v); }
std::string format_value(long v) { return std::to_string(v); }
std::string format_value(long long v) { return std::to_string(v); }
std::string format_value(unsigned long v) { return std::to_string(v); }
std::string format_value(double v) { return fmt::format("{}", v); }
std::string format_value(const std::vector<std::string>& v) { return join(v, ","); }
std::string format_value(const std::vector<double>& v) {
  std::vector<std::string> s;
  for (double d : v) s.push_back(format_value(d));
  return join(s, ",");
}
std::string format_value(const std::vector<int>& v) {
  std::vector<std::string> s;
  for (int d : v) s.push_back(format_value(d));
  return join(s, ",");
}

}  // namespace detail
}  // namespace sensecf
