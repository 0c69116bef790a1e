// What the report reads from a run's stored configuration (the effective INI
// text in the results file's `config` attribute) and how it orders methods.
//
// The report only needs two things from it: the order in which the config lists
// the CF methods (keys named `methods` or `*_methods`, in any section), and the
// immutable features (`[data] immutable`). Everything else about the run is in
// the result rows themselves. This is a reader of `Options::effective_ini()`
// text, not a second option parser: unknown keys are ignored.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sensecf::report {

class StoredConfig {
 public:
  explicit StoredConfig(const std::string& ini_text);
  // The value of `section.key` ('-' and '_' equivalent, case-insensitive), with
  // any trailing "# comment" removed; nullopt when absent.
  std::optional<std::string> value(const std::string& section, const std::string& key) const;
  // Every method named by a `methods` / `*_methods` key, in file order, each once.
  std::vector<std::string> listed_methods() const;
  // `[data] immutable`, split on commas (empty when absent).
  std::vector<std::string> immutable_features() const;

 private:
  struct Entry {
    std::string section, key, value;
  };
  std::vector<Entry> entries_;
};

// The methods of a table or figure, in report order.
//   chosen:  when non-empty, exactly these (those present), in this order;
//   else:    first those the config lists, in its order, then the rest grouped
//            by family (dice*, cfnow*, nice*, other, llm:*) and sorted by name.
std::vector<std::string> order_methods(const std::vector<std::string>& present,
                                       const std::vector<std::string>& config_order,
                                       const std::vector<std::string>& chosen);

}  // namespace sensecf::report
