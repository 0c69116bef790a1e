// `sensecf report`: options, the shared context, and index.md.
//
// The parts (tables.h, figures.h) each write their own files through the
// context; this file runs them in the paper's order and then writes index.md:
// what the run contains and what it does not (data source, CF baselines, LLM
// models and modes, fine-tuning), one line per output, the notes of parts that
// were skipped or incomplete, the run's provenance and task counts from /tasks.
#include "sensecf/report/report.h"
#include "sensecf/core/vocabulary.h"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"
#include "sensecf/report/figures.h"
#include "sensecf/report/gnuplot.h"
#include "sensecf/report/methods.h"
#include "sensecf/report/run_config.h"
#include "sensecf/report/tables.h"
#include "sensecf/report/text_table.h"

namespace sensecf::report {

void declare_options(Options& options, ReportOptions& r) {
  options.add("report.results", &r.results,
              "results file(s) written by `sensecf sweep` (HDF5); several (A.h5,B.h5) are merged, a task in more "
              "than one counted once",
              "results");
  options.add("report.out", &r.out, "directory for the tables, figures and index.md (created)", "out");
  options.add("report.ratio", &r.ratio, "augmentation ratio of Table IV's CF-added rows (0: the largest present)",
              "ratio");
  options.add("report.fraction", &r.fraction,
              "share removed in the scarcity scenarios shown (0: the config's, or 0.5, when present; else the largest)",
              "fraction");
  options.add("report.methods", &r.methods,
              "CF methods shown, in this order, in every table and figure (default: all, in the config's order)",
              "methods");
  options.add("report.fig6_features", &r.fig6_features,
              "features shown in Fig. 6 (default: those CFs can change)", "fig6-features");
  options.add("report.fig8_methods", &r.fig8_methods, "methods shown in Fig. 8, one panel each (default: all)",
              "fig8-methods");
  options.add("report.fig8_purpose", &r.fig8_purpose, "which CFs Fig. 8 shows", "fig8-purpose")
      .choices({vocab::kTable3, vocab::kForAugment});
  options.add("report.fig8_scenario", &r.fig8_scenario,
              "scenario of Fig. 8's CFs (default: full for table3, else the first present)", "fig8-scenario");
  options.add("report.fig8_seed", &r.fig8_seed, "seed of Fig. 8's CFs (-1: the smallest present)", "fig8-seed");
  options.add("report.fig8_points", &r.fig8_points, "factual rows per Fig. 8 panel at most (0: all)", "fig8-points");
  options.add("report.gnuplot", &r.gnuplot, "gnuplot program: a name on PATH or a path", "gnuplot");
  options.add_check([&r] {
    if (r.results.empty()) {
      throw UsageError("no results file given", "pass --results R.h5 (the file `sensecf sweep --results` wrote)");
    }
    if (r.out.empty()) throw UsageError("report.out is empty", "pass --out DIR");
    if (!(r.ratio >= 0 && r.ratio <= 1)) {
      throw UsageError(
          fmt::format("report.ratio must be in [0, 1] (0: the largest present), got {}", r.ratio),
          "one of the sweep's sweep.ratios, e.g. --ratio 1.0, or 0 (the default)");
    }
    if (!(r.fraction >= 0 && r.fraction < 1)) {
      throw UsageError(fmt::format("report.fraction must be in [0, 1) (0: automatic), got {}", r.fraction),
                       "the sweep's sweep.fraction, e.g. --fraction 0.5, or 0 (the default)");
    }
    if (r.fig8_points < 0)
      throw UsageError(fmt::format("report.fig8_points must be >= 0, got {}", r.fig8_points),
                       "e.g. --fig8-points 200 (the default), or 0 for all rows");
  });
}

namespace {

// The scarcity fraction shown: the requested one; else the config's
// `[sweep] fraction` or 0.5, whichever rows have first; else the largest present.
double pick_fraction(const store::Results& results, double requested, const StoredConfig& config) {
  if (requested > 0) return requested;
  std::set<double> present;
  for (const auto& r : results.clf) {
    if ((r.kind == vocab::kTrainClf || r.kind == vocab::kAugment) && r.scenario != vocab::kFull) present.insert(r.fraction);
  }
  std::vector<double> preferred;
  if (const auto v = config.value("sweep", "fraction")) {
    if (const auto f = parse_double(*v)) preferred.push_back(*f);
  }
  preferred.push_back(0.5);
  for (double want : preferred) {
    for (double f : present) {
      if (same_setting(f, want)) return f;
    }
  }
  return present.empty() ? 0.5 : *present.rbegin();
}

std::string first_nonempty_line(const std::string& text) {
  for (const auto& line : split_list(text, '\n')) {
    if (!line.empty()) return line;
  }
  return "";
}

std::string or_dash(const std::string& s) { return s.empty() ? "–" : markdown_escape(s); }

// Task counts from /tasks: a key is done when any attempt is done, failed when
// all of its attempts failed.
std::string tasks_section(const std::vector<store::TaskRecord>& tasks) {
  struct State {
    const store::TaskRecord* last = nullptr;
    bool done = false;
    long long attempts = 0;
  };
  std::map<std::string, State> by_key;
  std::vector<std::string> order;
  for (const auto& t : tasks) {
    auto [it, inserted] = by_key.try_emplace(t.key);
    if (inserted) order.push_back(t.key);
    it->second.last = &t;
    it->second.done = it->second.done || t.status == "done";
    ++it->second.attempts;
  }
  std::map<std::string, std::pair<int, int>> by_kind;  // kind -> done, failed
  std::vector<const State*> failed;
  for (const auto& key : order) {
    const State& s = by_key[key];
    auto& counts = by_kind[s.last->kind];
    if (s.done) {
      ++counts.first;
    } else {
      ++counts.second;
      failed.push_back(&s);
    }
  }
  std::string out = "## Tasks\n\n";
  if (tasks.empty()) return out + "/tasks is empty: no task has finished yet.\n\n";
  out += fmt::format("{} tasks ({} attempts): {} done, {} failed.\n\n| kind | done | failed |\n|---|---:|---:|\n",
                     order.size(), tasks.size(), order.size() - failed.size(), failed.size());
  for (const auto& [kind, c] : by_kind) out += fmt::format("| {} | {} | {} |\n", or_dash(kind), c.first, c.second);
  if (!failed.empty()) {
    constexpr std::size_t kMaxListed = 20;
    out += "\nFailed tasks (last attempt's message):\n\n";
    for (std::size_t i = 0; i < std::min(failed.size(), kMaxListed); ++i) {
      const auto& t = *failed[i]->last;
      out += fmt::format("- `{}` {} ({} attempts): {}\n", t.key, markdown_escape(t.label), failed[i]->attempts,
                         markdown_escape(t.message.empty() ? "no message" : t.message));
    }
    if (failed.size() > kMaxListed) out += fmt::format("- … and {} more (see /tasks)\n", failed.size() - kMaxListed);
  }
  return out + "\n";
}

// Where the rows came from, as the stored configuration records it.
std::string data_source_text(const StoredConfig& config) {
  const auto source = config.value("data", "source");
  if (!source || source->empty()) {
    return "unknown (the results file's stored configuration does not record `[data] source`)";
  }
  if (*source == "synth") return "synthetic (`[data] source = synth`: the generated cohort of `[synth]`)";
  if (*source == "aireadi") return "real: AI-READI (`[data] source = aireadi`)";
  if (*source == "csv") {
    const auto path = config.value("data", "path");
    return "a CSV file (`[data] source = csv`" + (path && !path->empty() ? ", `" + *path + "`" : std::string()) +
           "), real unless that file was generated";
  }
  return "`" + markdown_escape(*source) + "` (`[data] source`)";
}

std::string join_words(const std::vector<std::string>& words, const std::string& none = "none") {
  if (words.empty()) return none;
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) out += (i ? ", " : "") + words[i];
  return out;
}

// What the run holds (methods, models, modes, fine-tuning) and what of the
// paper it therefore cannot show.
// Per remote method: what its generate tasks spent, summed over tasks.
std::vector<std::string> usage_lines(const store::Results& r) {
  std::map<std::string, store::UsageRow> by_method;
  for (const auto& u : r.usage) {
    auto& t = by_method[u.method];
    t.answers += u.answers;
    t.cache_hits += u.cache_hits;
    t.requests += u.requests;
    t.failures += u.failures;
    t.prompt_tokens += u.prompt_tokens;
    t.completion_tokens += u.completion_tokens;
    t.cost_usd += u.cost_usd;
  }
  std::vector<std::string> lines;
  for (const auto& [method, t] : by_method) {
    lines.push_back(fmt::format("{}: {} answers ({} from the cache), {} requests, {} given up, {} + {} tokens, ~${:.2f}",
                                markdown_escape(method), t.answers, t.cache_hits, t.requests, t.failures,
                                t.prompt_tokens, t.completion_tokens, t.cost_usd));
  }
  return lines;
}

std::string contents_section(const ReportContext& context) {
  const auto& r = context.results();
  const StoredConfig config(r.provenance.config);
  std::set<std::string> methods;
  for (const auto& row : r.cf) methods.insert(row.method);
  for (const auto& row : r.clf) methods.insert(row.method);
  for (const auto& c : r.counterfactuals) methods.insert(c.method);
  for (const auto& t : r.tasks) {
    if (t.kind == vocab::kGenerate || t.kind == vocab::kAugment) methods.insert(t.method);
  }
  methods.erase("");
  std::vector<std::string> baselines, llm_labels;
  std::map<std::string, std::set<std::string>> modes;  // model -> modes (with variant tags)
  const char* kModes[] = {"zero-shot", "few-shot", "fine-tuned"};
  std::set<std::string> modes_seen;
  for (const auto& m : baselines_first(order_methods({methods.begin(), methods.end()}, context.config_methods(), {}))) {
    const auto llm = parse_llm_method(m);
    if (!llm) {
      baselines.push_back(markdown_escape(m));
      continue;
    }
    llm_labels.push_back(markdown_escape(method_label(m)));
    modes[llm->model].insert(llm->mode + (llm->variant.empty() ? "" : " +" + llm->variant));
    modes_seen.insert(llm->mode);
  }
  // Fine-tuning: done finetune tasks per model, and their loss rows.
  std::map<std::string, std::set<long long>> finetuned;  // model -> seeds
  std::map<std::string, std::string> finetune_model;     // task key -> model
  for (const auto& t : r.tasks) {
    if (t.kind == vocab::kFinetune && t.status == "done") {
      finetuned[t.model.empty() ? "?" : t.model].insert(t.seed);
      finetune_model[t.key] = t.model;
    }
  }
  std::map<std::string, std::size_t> loss_rows;
  for (const auto& row : r.train) {
    if (row.kind == vocab::kFinetune && finetune_model.count(row.key)) ++loss_rows[finetune_model[row.key]];
  }
  std::vector<std::string> model_lines, finetune_lines;
  for (const auto& [model, m] : modes) {
    model_lines.push_back(markdown_escape(model) + ": " + markdown_escape(join_words({m.begin(), m.end()})));
  }
  for (const auto& [model, seeds] : finetuned) {
    std::vector<std::string> s;
    for (long long seed : seeds) s.push_back(std::to_string(seed));
    finetune_lines.push_back(fmt::format("{}: {} adapter(s) trained (seeds {}), {} loss rows", markdown_escape(model),
                                         seeds.size(), join_words(s), loss_rows[model]));
  }
  std::string out = "## What this run contains\n\n| | |\n|---|---|\n";
  out += "| data source | " + data_source_text(config) + " |\n";
  out += "| CF baselines | " + join_words(baselines) + " |\n";
  out += "| LLM methods | " + join_words(llm_labels) + " |\n";
  out += "| LLM models and modes | " + join_words(model_lines) + " |\n";
  out += "| fine-tuning in this run | " + join_words(finetune_lines, "no finetune task") + " |\n";
  out += "| remote LLMs (/metrics/usage) | " + join_words(usage_lines(r), "none") + " |\n\n";
  std::vector<std::string> absent;
  if (llm_labels.empty()) {
    absent.push_back("No LLM method: Tables III–IV and Figs. 6–8 show the baselines only; the paper's LLM rows, "
                     "the zero-shot vs fine-tuned ablation and an LLM intervention are not in this run.");
  } else {
    std::vector<std::string> missing;
    for (const char* mode : kModes) {
      if (!modes_seen.count(mode)) missing.push_back(mode);
    }
    if (!missing.empty()) absent.push_back("No LLM method in mode " + join_words(missing) + ".");
    if (modes_seen.count("fine-tuned") && finetuned.empty()) {
      absent.push_back("Fine-tuned methods are present but no finetune task ran in this sweep: their adapters were "
                       "trained elsewhere (no fine-tuning curves).");
    }
  }
  if (baselines.empty()) absent.push_back("No baseline CF method.");
  if (!absent.empty()) {
    out += "Not in this run:\n\n";
    for (const auto& a : absent) out += "- " + a + "\n";
    out += "\n";
  }
  return out;
}

std::string index_text(const ReportContext& context, const std::vector<Source>& sources) {
  const auto& r = context.results();
  std::string out = "# sensecf report\n\n";
  if (sources.size() == 1 && !sources[0].path.empty()) out += "Results file: `" + sources[0].path + "`\n\n";
  if (sources.size() > 1) {
    out += "Results files (merged; a task in several counts once, from the first):\n\n";
    for (const auto& src : sources) {
      out += fmt::format("- `{}`: {} task rows{}\n", src.path, src.tasks,
                         src.duplicates ? fmt::format(", {} tasks also in an earlier file", src.duplicates) : "");
    }
    out += "\n";
  }
  out += contents_section(context);
  out += "## Outputs\n\n";
  for (const auto& a : context.artifacts()) out += fmt::format("- [{0}]({0}): {1}\n", a.name, a.what);
  out += "- index.md: this page\n\n";
  out += "Formulas and layouts: docs/report.md in the sensecf sources. Mean ± sd over seeds (sd with n − 1; with "
         "one seed the mean alone).\n\n";
  if (!context.notes().empty()) {
    out += "## Skipped or incomplete\n\n";
    for (const auto& n : context.notes()) out += "- " + n + "\n";
    out += "\n";
  }
  out += "## Provenance\n\n";
  for (const auto& src : sources) {
    const auto& p = src.provenance;
    if (sources.size() > 1) out += "`" + src.path + "`\n\n";
    out += "| | |\n|---|---|\n";
    const std::pair<const char*, std::string> rows[] = {
        {"results format version", src.format_version}, {"sensecf version", p.sensecf_version},
        {"git SHA", p.git_sha},                          {"config hash", p.config_hash},
        {"started", p.started},                          {"MPI ranks", std::to_string(p.mpi_size)},
        {"hosts", p.hosts},                              {"Slurm job", p.slurm_job_id},
    };
    for (const auto& [name, value] : rows) out += fmt::format("| {} | {} |\n", name, or_dash(value));
    out += "\n";
  }
  out += tasks_section(r.tasks);
  return out;
}

}  // namespace

ReportContext::ReportContext(const store::Results& results, const ReportOptions& options,
                             std::filesystem::path out_dir, const Gnuplot* gnuplot)
    : results_(results), options_(options), out_dir_(std::move(out_dir)), gnuplot_(gnuplot) {
  const StoredConfig config(results.provenance.config);
  config_methods_ = config.listed_methods();
  immutable_ = config.immutable_features();
  fraction_ = pick_fraction(results, options.fraction, config);
}

std::vector<std::string> ReportContext::order(const std::vector<std::string>& methods_present) const {
  auto methods = order_methods(methods_present, config_methods_, options_.methods);
  return options_.methods.empty() ? baselines_first(std::move(methods)) : methods;
}

void ReportContext::write(const std::string& name, const std::string& text, const std::string& what) {
  write_text_file(out_dir_ / name, text);
  record(name, what);
}

void ReportContext::record(const std::string& name, const std::string& what) { artifacts_.push_back({name, what}); }

void ReportContext::plot(const std::string& stem, const std::string& script, const std::string& what) {
  const std::string script_name = stem + ".gp";
  write(script_name, script, "gnuplot script of " + stem + " (data inline; `gnuplot " + script_name + "` redraws it)");
  if (!gnuplot_) return;
  std::error_code ec;
  for (const char* ext : {".png", ".svg"}) std::filesystem::remove(out_dir_ / (stem + ext), ec);
  const auto run = gnuplot_->run(out_dir_, script_name);
  bool complete = run.ok;
  for (const char* ext : {".png", ".svg"}) {
    const auto path = out_dir_ / (stem + ext);
    if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0) {
      record(stem + ext, what);
    } else {
      complete = false;
    }
  }
  if (complete && !run.output.empty()) spdlog::debug("gnuplot on {}:\n{}", script_name, run.output);
  if (!complete) {
    const std::string first_line = first_nonempty_line(run.output);
    spdlog::warn("gnuplot failed on {}:\n{}", (out_dir_ / script_name).string(), run.output);
    note(fmt::format("{}: gnuplot failed ({}); the data and {} are written.", stem,
                     first_line.empty() ? "no output" : markdown_escape(first_line), script_name));
  }
}

void ReportContext::note(const std::string& line) {
  spdlog::info("report: {}", line);
  notes_.push_back(line);
}

store::Results merge_results(const std::vector<std::string>& paths, std::vector<Source>* sources) {
  store::Results merged;
  std::set<std::string> seen;  // task keys taken from an earlier file
  for (std::size_t i = 0; i < paths.size(); ++i) {
    store::Results r = store::read_results(paths[i]);
    spdlog::info("read {}: {} tasks, {} CF metric rows, {} classifier metric rows, {} CF arrays", paths[i],
                 r.tasks.size(), r.cf.size(), r.clf.size(), r.counterfactuals.size());
    Source source{paths[i], r.provenance, r.format_version, r.tasks.size(), 0};
    std::set<std::string> mine;
    for (const auto& t : r.tasks) mine.insert(t.key);
    std::set<std::string> skip;
    for (const auto& k : mine)
      if (seen.count(k)) skip.insert(k);
    source.duplicates = skip.size();
    auto keep = [&](auto& from, auto& to) {
      for (auto& row : from)
        if (!skip.count(row.key)) to.push_back(std::move(row));
    };
    if (i == 0) {
      merged.provenance = r.provenance;
      merged.format_version = r.format_version;
    }
    keep(r.tasks, merged.tasks);
    keep(r.cf, merged.cf);
    keep(r.clf, merged.clf);
    keep(r.train, merged.train);
    keep(r.usage, merged.usage);
    keep(r.counterfactuals, merged.counterfactuals);
    seen.insert(mine.begin(), mine.end());
    if (skip.size()) {
      spdlog::info("{}: {} of its {} tasks are in an earlier file too; their rows come from that file", paths[i],
                   skip.size(), mine.size());
    }
    if (sources) sources->push_back(std::move(source));
  }
  return merged;
}

std::vector<std::string> write_report(const ReportOptions& options) {
  std::vector<Source> sources;
  const store::Results results = merge_results(options.results, &sources);
  return write_report(results, options, sources);
}

std::vector<std::string> write_report(const store::Results& results, const ReportOptions& options,
                                      const std::vector<Source>& sources) {
  const std::filesystem::path dir = options.out;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!std::filesystem::is_directory(dir)) {
    throw Error("cannot create the report directory '" + dir.string() + "'" + (ec ? ": " + ec.message() : ""),
                "choose another --out");
  }
  // Outputs of an earlier report in the same directory would look current: remove
  // exactly the names this report writes (nothing else).
  for (const char* stem : {"table3", "table4", "intervention", "fig1", "fig6", "fig7", "fig8", "finetune"}) {
    for (const char* ext : {".md", ".csv", ".tex", ".gp", ".png", ".svg"}) std::filesystem::remove(dir / (std::string(stem) + ext), ec);
  }
  std::filesystem::remove(dir / "index.md", ec);
  const auto gnuplot = Gnuplot::find(options.gnuplot);
  ReportContext context(results, options, dir, gnuplot ? &*gnuplot : nullptr);
  if (!gnuplot) {
    spdlog::warn("gnuplot ('{}') not found: writing the figures' data and .gp scripts only; draw them later with "
                 "`gnuplot figN.gp` in {} (Debian: apt-get install gnuplot-nox)",
                 options.gnuplot, dir.string());
    context.note("gnuplot ('" + options.gnuplot + "') was not found: figures are .gp scripts and CSV data only; "
                 "run `gnuplot figN.gp` here to draw them.");
  }
  {  // methods asked for by name that no row has
    std::set<std::string> known;
    for (const auto& r : results.cf) known.insert(r.method);
    for (const auto& r : results.clf) known.insert(r.method);
    for (const auto& c : results.counterfactuals) known.insert(c.method);
    known.erase("");
    const std::vector<std::string> names(known.begin(), known.end());
    for (const auto& m : options.methods) {
      if (known.count(m)) continue;
      const std::string best = closest_match(m, names);
      spdlog::warn("--methods: no rows for method '{}'{}", m, best.empty() ? "" : "; did you mean '" + best + "'?");
      context.note("--methods names '" + markdown_escape(m) + "', which has no rows" +
                   (best.empty() ? "." : "; did you mean '" + markdown_escape(best) + "'?"));
    }
  }
  write_table3(context);
  write_table4(context);
  write_intervention(context);
  write_fig1(context);
  write_fig6(context);
  write_fig7(context);
  write_fig8(context);
  write_finetune_curves(context);
  if (sources.size() > 1) {
    std::size_t duplicates = 0;
    for (const auto& src : sources) duplicates += src.duplicates;
    const std::string first_hash = sources[0].provenance.config_hash;
    std::vector<std::string> other_configs;
    for (const auto& src : sources)
      if (src.provenance.config_hash != first_hash) other_configs.push_back(markdown_escape(src.path));
    if (!other_configs.empty()) {
      context.note(fmt::format("{} of the {} files ran another configuration ({}); method order, immutables and the "
                               "scarcity fraction follow the first file's.",
                               other_configs.size(), sources.size(), join(other_configs, ", ")));
    }
    if (duplicates) {
      context.note(fmt::format("{} tasks appear in more than one file; each counts once, with the rows of the "
                               "first file that has it.",
                               duplicates));
    }
  }
  // Results read by the caller: one source, the file options name (if any).
  const std::vector<Source> listed =
      sources.empty() ? std::vector<Source>{Source{join(options.results, ", "), results.provenance,
                                                   results.format_version, results.tasks.size(), 0}}
                      : sources;
  write_text_file(dir / "index.md", index_text(context, listed));

  std::vector<std::string> paths;
  for (const auto& a : context.artifacts()) paths.push_back((dir / a.name).string());
  paths.push_back((dir / "index.md").string());
  return paths;
}

}  // namespace sensecf::report
