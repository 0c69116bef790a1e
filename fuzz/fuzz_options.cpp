// libFuzzer target for the options parser (src/core/options.cpp): INI config
// files and the command line.
//
// A realistic set of options is declared (strings with and without choices,
// ints, longs, unsigned longs, doubles, flags, lists of strings, numbers and
// integers, short aliases, a validation check), then the input is parsed as the
// INI file of `--config F.ini`. When its first line is "#!ARGS", the words of
// that line (a comment for the INI reader) follow as command-line arguments.
// parse() must either return with every value round-tripping through its text
// form, or throw sensecf::Error; any other exception, crash, leak, hang or
// sanitizer report is a bug.
//
//   fuzz/campaign.sh options 600     # a campaign: see fuzz/CMakeLists.txt
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "temp_file.h"

namespace {

using sensecf::fuzz::temp_file;

struct Settings {
  std::string path, label = "high_stress", missing = "error", model = "nn", name;
  std::vector<std::string> categorical = {"gender", "medication"}, methods;
  std::vector<double> ratios = {0.5, 1.0};
  std::vector<int> seeds = {1, 2};
  double test_fraction = 0.2, lr = 1e-3;
  int epochs = 30, factual_class = -1;
  long batch = 64;
  long long budget = 0;
  unsigned long participants = 120;
  bool verbose = false, resume = true;
};

void declare(sensecf::Options& o, Settings& s) {
  o.add("data.path", &s.path, "CSV file", "data");
  o.add("data.label", &s.label, "label column", "label");
  o.add("data.missing", &s.missing, "empty cells").choices({"error", "drop"});
  o.add("data.categorical", &s.categorical, "categorical columns", "categorical");
  o.add("data.test_fraction", &s.test_fraction, "held out", "test-fraction");
  o.add("clf.model", &s.model, "classifier").choices({"nn", "xgb", "rf", "svm"});
  o.add("clf.epochs", &s.epochs, "epochs", "epochs");
  o.add("clf.batch_size", &s.batch, "batch size");
  o.add("cf.factual_class", &s.factual_class, "queries of this predicted class (-1: all)");
  o.add("clf.lr", &s.lr, "learning rate");
  o.add("sweep.methods", &s.methods, "CF methods");
  o.add("sweep.ratios", &s.ratios, "augmentation ratios");
  o.add("sweep.seeds", &s.seeds, "seeds", "seeds");
  o.add("sweep.budget", &s.budget, "token budget").not_hashed();
  o.add("synth.participants", &s.participants, "participants");
  o.add("run.name", &s.name, "run name").not_hashed();
  o.add("run.resume", &s.resume, "resume", "resume");
  o.add("log.verbose", &s.verbose, "debug output", "verbose");
  o.add_check([&s] {
    if (!(s.test_fraction > 0 && s.test_fraction < 1)) throw sensecf::UsageError("data.test_fraction must be in (0, 1)");
    if (s.epochs < 1) throw sensecf::UsageError("clf.epochs must be >= 1");
  });
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string& path = [] {
    static std::ostringstream sink;  // --help prints to stdout
    std::cout.rdbuf(sink.rdbuf());
    return temp_file("ini");
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) std::abort();
  }
  std::vector<std::string> args = {"--config", path};
  if (text.rfind("#!ARGS", 0) == 0) {
    const auto more = words(text.substr(6, text.find('\n') == std::string::npos ? std::string::npos : text.find('\n') - 6));
    args.insert(args.end(), more.begin(), more.end());
  }

  Settings s;
  sensecf::Options options("fuzz", "options parser under fuzzing");
  declare(options, s);
  try {
    if (!options.parse(args)) return 0;  // --help
  } catch (const sensecf::Error&) {
    return 0;
  }
  // Parsed: every value's text form reads back to the same value, doubles are
  // finite, choices hold, the effective configuration and its hash exist.
  if (!std::isfinite(s.test_fraction) || !std::isfinite(s.lr)) std::abort();
  for (double r : s.ratios)
    if (!std::isfinite(r)) std::abort();
  for (const auto& e : options.entries()) {
    const std::string text_form = e.get();
    if (!e.choices.empty() && std::find(e.choices.begin(), e.choices.end(), text_form) == e.choices.end()) std::abort();
    try {
      e.set(text_form);
    } catch (const std::invalid_argument&) {
      std::abort();  // a value the parser accepted does not read back
    }
    if (e.get() != text_form) std::abort();
  }
  if (options.config_hash().size() != 16 || options.effective_ini().empty()) std::abort();
  return 0;
}
