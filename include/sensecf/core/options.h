// Options as data: one declaration per option, with its default, help and key.
//
// Every option has a key "section.name" that is both its INI entry
//     [data]
//     label = stress
// and its flag `--data.label stress` (dashes and underscores are equivalent in
// names); an option may also have a short alias such as `--label`. Precedence is
// defaults < config file (`--config F.ini`) < command line. Unknown keys are
// errors that name the file and line and suggest the closest key. After parsing,
// `checks` run (the validate() step) and the effective configuration can be
// printed and hashed for provenance.
//
// This class deliberately knows nothing about what the options mean: modules
// declare their own options next to their option structs (data::declare_options
// etc.). Command-line tokenising and help layout come from Boost.Program_options.
#pragma once

#include <functional>
#include <map>
#include <iosfwd>
#include <stdexcept>
#include <utility>
#include <string>
#include <type_traits>
#include <vector>

namespace sensecf {

// Where an option's value came from. kSaved: an artefact's saved settings (the
// data options of a trained model), applied only over defaults.
enum class OptionSource { kDefault, kConfigFile, kCommandLine, kSaved };
const char* to_string(OptionSource source);

class Options {
 public:
  struct Entry {
    std::string key;    // "section.name"
    std::string alias;  // short CLI form without dashes, or empty
    std::string help;
    std::string default_text;
    std::vector<std::string> choices;  // allowed values (empty: any)
    bool is_flag = false;              // bool: `--flag` alone means true
    bool hashed = true;                // part of the config hash (results depend on it)
    OptionSource source = OptionSource::kDefault;
    std::function<void(const std::string&)> set;  // throws std::invalid_argument
    std::function<std::string()> get;
  };

  Options(std::string command, std::string summary);

  // Declares an option whose default is the current value of *target. Supported
  // T: std::string, bool, int, long, long long, unsigned long, double,
  // std::vector<std::string|double|int> (comma- or space-separated). Integers
  // must be >= 0 unless the default is negative.
  template <class T>
  Options& add(const std::string& key, T* target, const std::string& help,
               const std::string& alias = {});
  // Modifiers for the option declared last.
  Options& choices(std::vector<std::string> allowed);
  Options& not_hashed();
  // For commands that combine several modules' options: short aliases are
  // dropped (they would clash, e.g. clf.seed and synth.seed are both --seed),
  // and options a command sets itself can be removed.
  void disable_aliases() { aliases_enabled_ = false; }
  void enable_aliases() { aliases_enabled_ = true; }
  void erase(const std::string& key);
  // Gives a declared option a short command-line form (a command that
  // combines modules picks the ones that make sense for it).
  void set_alias(const std::string& key, const std::string& alias);
  // Sets `key` to `value` only when it still has its default (neither a config
  // file nor the command line set it): saved settings under the user's flags.
  // `where` names the source in errors. Returns whether it was applied; an
  // unknown key is ignored (false).
  bool set_if_default(const std::string& key, const std::string& value, const std::string& where);

  // A validation step run after all values are set; throw UsageError to reject.
  void add_check(std::function<void()> check);
  // A config read when no --config is given (e.g. one compiled into the binary);
  // `name` stands for the file in messages and provenance.
  void set_default_config(std::string name, std::string text) {
    default_config_ = {std::move(name), std::move(text)};
  }

  // Parses the command-line arguments that follow the sub-command name.
  // Returns false when --help was given (the help text was printed to stdout).
  // Throws UsageError for unknown keys, bad values and failed checks.
  bool parse(const std::vector<std::string>& args);

  std::string help() const;
  // The effective configuration as INI text, each value commented with its source.
  std::string effective_ini() const;
  // FNV-1a hash of every hashed key=value pair: equal configs, equal hash.
  std::string config_hash() const;
  // key -> value of every hashed option, sorted by key: what the hash covers.
  std::map<std::string, std::string> hashed_values() const;
  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& command() const { return command_; }
  const std::vector<std::string>& config_files() const { return config_files_; }

 private:
  Entry& declare(const std::string& key, const std::string& help, const std::string& alias);
  Entry* find(const std::string& name);
  std::string suggest(const std::string& name) const;
  void apply(Entry& entry, const std::string& value, OptionSource source,
             const std::string& where);
  void read_config_file(const std::string& path);
  void read_config(std::istream& in, const std::string& path);
  std::vector<std::string> normalise_args(const std::vector<std::string>& args) const;

  std::string command_;
  std::string summary_;
  std::vector<Entry> entries_;
  std::vector<std::function<void()>> checks_;
  std::vector<std::string> config_files_;
  bool aliases_enabled_ = true;
  std::pair<std::string, std::string> default_config_;  // name, INI text
};

namespace detail {
// Text <-> value conversions used by Options::add; throw std::invalid_argument.
void parse_value(const std::string& text, std::string* out);
void parse_value(const std::string& text, bool* out);
void parse_value(const std::string& text, int* out);
void parse_value(const std::string& text, long* out);
void parse_value(const std::string& text, long long* out);
void parse_value(const std::string& text, unsigned long* out);
void parse_value(const std::string& text, double* out);
void parse_value(const std::string& text, std::vector<std::string>* out);
void parse_value(const std::string& text, std::vector<double>* out);
void parse_value(const std::string& text, std::vector<int>* out);
std::string format_value(const std::string& v);
std::string format_value(bool v);
std::string format_value(int v);
std::string format_value(long v);
std::string format_value(long long v);
std::string format_value(unsigned long v);
std::string format_value(double v);
std::string format_value(const std::vector<std::string>& v);
std::string format_value(const std::vector<double>& v);
std::string format_value(const std::vector<int>& v);
}  // namespace detail

template <class T>
Options& Options::add(const std::string& key, T* target, const std::string& help,
                      const std::string& alias) {
  Entry& e = declare(key, help, alias);
  e.default_text = detail::format_value(*target);
  e.is_flag = std::is_same_v<T, bool>;
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && !std::is_same_v<T, bool>) {
    // Integer options are counts, sizes and steps: >= 0, unless the default is
    // negative (a sentinel such as -1: "all"), which makes negatives valid.
    const bool count = *target >= 0;
    e.set = [target, count](const std::string& text) {
      T value{};
      detail::parse_value(text, &value);
      if (count && value < 0) throw std::invalid_argument("expected a whole number >= 0");
      *target = value;
    };
  } else {
    e.set = [target](const std::string& text) { detail::parse_value(text, target); };
  }
  e.get = [target] { return detail::format_value(*target); };
  return *this;
}

}  // namespace sensecf
