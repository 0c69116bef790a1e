// `sensecf report`: the paper's tables and figures rebuilt from a results file.
//
//   write_report(options)  reads --results, writes into --out:
//     table3.{md,csv,tex}   CF quality per factual class (Table III)
//     table4.{md,csv,tex}   relative change vs full data, recovery vs reduced (Table IV)
//     intervention.md       a Table II-style narrative of one CF for a high-stress test patient
//     fig1.{png,svg,csv,gp} F1 vs training-data reduction per classifier
//     fig6.{png,svg,csv,gp} how often each mutable feature is changed, per method
//     fig7.{png,svg,csv,gp} F1 vs augmentation ratio per scarcity scenario
//     fig8.{png,svg,csv,gp} zero-shot vs fine-tuned CFs of one LLM in one PCA plane (the
//                           ablation), else 2-D PCA of factual vs CF points per method
//     index.md              what the run contains (data source, methods, LLM models and
//                           modes, fine-tuning) and not, every output in one line,
//                           provenance, task counts, skipped parts and why
// Formulas and layouts: docs/report.md. A part whose rows are missing is skipped
// with a note in index.md. Without gnuplot the .gp scripts and data are still
// written (one warning) and the figures can be drawn later with `gnuplot figN.gp`.
//
// Not here: reading the file (store/results.h), the tables (tables.h), figures
// (figures.h), PCA (pca.h), gnuplot (gnuplot.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "sensecf/store/results.h"

namespace sensecf {
class Options;
}

namespace sensecf::report {

class Gnuplot;

struct ReportOptions {
  // Results files written by `sensecf sweep`; several are merged (merge_results).
  std::vector<std::string> results;
  std::string out = "results/report";   // output directory (created)
  double ratio = 0;                     // Table IV augmentation ratio; 0: the largest present
  double fraction = 0;                  // share removed in the scarcity scenarios; 0: [sweep] fraction or 0.5 if present, else the largest
  std::vector<std::string> methods;     // methods and their order in every table/figure; empty: all
  std::vector<std::string> fig6_features;  // features of Fig. 6; empty: mutable features (see figures.h)
  std::vector<std::string> fig8_methods;   // panels of Fig. 8; empty: every method (after `methods`)
  std::string fig8_purpose = "table3";     // which CFs Fig. 8 shows: table3 | augment
  std::string fig8_scenario;               // scenario of Fig. 8's CFs; empty: full for table3, else the first
  long long fig8_seed = -1;                // seed of Fig. 8's CFs; -1: the smallest present
  int fig8_points = 200;                   // factual rows per panel at most (evenly spaced subset); 0: all
  std::string gnuplot = "gnuplot";         // gnuplot program (a name on PATH or a path)
};

void declare_options(Options& options, ReportOptions& report);

// A written file and what it is (one line in index.md).
struct Artifact {
  std::string name;  // file name inside the output directory
  std::string what;
};

// What the parts of a report share while they are written.
class ReportContext {
 public:
  ReportContext(const store::Results& results, const ReportOptions& options, std::filesystem::path out_dir,
                const Gnuplot* gnuplot);

  const store::Results& results() const { return results_; }
  const ReportOptions& options() const { return options_; }
  const std::filesystem::path& out_dir() const { return out_dir_; }
  const Gnuplot* gnuplot() const { return gnuplot_; }  // nullptr: not installed
  // The given methods in report order: options().methods when given; else the
  // config's order, then by family, with every LLM method after the baselines.
  std::vector<std::string> order(const std::vector<std::string>& methods_present) const;
  const std::vector<std::string>& config_methods() const { return config_methods_; }
  const std::vector<std::string>& immutable_features() const { return immutable_; }
  // The share removed in the scarcity scenarios that Table IV and Fig. 7 show:
  // options().fraction, or the config's [sweep] fraction or 0.5 when rows have
  // it, else the largest present.
  double fraction() const { return fraction_; }

  // Writes `text` to out_dir/name and records it.
  void write(const std::string& name, const std::string& text, const std::string& what);
  // Records a file written by someone else (gnuplot).
  void record(const std::string& name, const std::string& what);
  // Writes script `name` (.gp, drawing `stem`.png and `stem`.svg) and runs it
  // when gnuplot is there; records what came out, notes a failure.
  void plot(const std::string& stem, const std::string& script, const std::string& what);
  // A part that was skipped or is incomplete: one line in index.md.
  void note(const std::string& line);

  const std::vector<Artifact>& artifacts() const { return artifacts_; }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  const store::Results& results_;
  const ReportOptions& options_;
  std::filesystem::path out_dir_;
  const Gnuplot* gnuplot_;
  std::vector<std::string> config_methods_, immutable_;
  double fraction_ = 0.5;
  std::vector<Artifact> artifacts_;
  std::vector<std::string> notes_;
};

// One results file of a (merged) report, for index.md's provenance.
struct Source {
  std::string path;
  store::Provenance provenance;
  std::string format_version;
  std::size_t tasks = 0;          // task rows it holds
  std::size_t duplicates = 0;     // tasks an earlier file already gave (their rows are not used)
};

// Several results files as one: every table's rows, in file order. A task
// (key) that an earlier file holds too contributes only that file's rows, so
// the same study given twice, or two files that share their first seeds,
// count each task once. The first file's provenance and config lead (method
// order, immutables, fraction); `sources` receives every file's. Throws when a
// file cannot be read, naming it.
store::Results merge_results(const std::vector<std::string>& paths, std::vector<Source>* sources);

// Reads options.results (merged when several) and writes the report; returns
// the paths written (index.md last).
std::vector<std::string> write_report(const ReportOptions& options);
// The same for results already read; `sources` lists the files they came from.
std::vector<std::string> write_report(const store::Results& results, const ReportOptions& options,
                                      const std::vector<Source>& sources = {});

}  // namespace sensecf::report
