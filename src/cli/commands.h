// The sub-commands of the single `sensecf` binary. Each parses its own options
// (`sensecf <cmd> --help`), runs, and returns the process exit code. Errors are
// thrown as sensecf::Error / UsageError and reported by main().
#pragma once

#include <map>
#include <string>
#include <vector>

#include <memory>
#include <utility>

#include "sensecf/core/communicator.h"
#include "sensecf/core/log.h"
#include "sensecf/core/options.h"
#include "sensecf/llm/model/options.h"

namespace sensecf::cli {

// One sub-command: its entry point and its line in `sensecf --help`.
struct Command {
  int (*run)(const std::vector<std::string>&);
  const char* summary;
};
inline constexpr const char* kLmSummary =
    "LLM tools: tokenize, init-tiny, init-adapter, finetune, convert, logits, generate, bench (`sensecf lm --help`)";

// The build's command set (command_set.cpp: all of them, under MPI;
// command_set_llm.cpp: `lm` alone, no MPI) and its error handling.
const std::map<std::string, Command>& commands();
// Adds run-time library versions (MPI's) to version_string().
void register_runtime_versions();
// This process's MPI rank while MPI is up, else 0 (for error messages).
int error_rank();
// The rank and size the launcher gave this process, read from its environment
// before MPI is initialised (Open MPI, PMIx/PMI, Slurm); 0 and 1 when none did.
std::pair<int, int> launcher_rank_and_size();
// The ranks a data-parallel command (lm finetune) runs on: MPI's world when a
// launcher started more than one rank (command_set.cpp), else one process.
// The LLM-only build has no MPI and refuses more than one rank.
std::unique_ptr<Communicator> job_communicator();
// After an error: ends MPI cleanly (every_rank) or aborts the job; returns exit_code.
int end_after_error(int exit_code, bool every_rank);

// Options every command has: [log] level, all_ranks.
void declare_common_options(Options& options, LogOptions& log);
// Parses args; returns false if --help was printed. Installs logging.
bool parse_and_start(Options& options, LogOptions& log, const std::vector<std::string>& args);
// --device, --dtype, --attention of the `lm` commands (cmd_lm.cpp).
void declare_model_options(Options& options, llm::ModelOptions& model);

int cmd_synth(const std::vector<std::string>& args);      // cmd_synth.cpp
int cmd_ingest(const std::vector<std::string>& args);     // cmd_ingest.cpp
int cmd_train_clf(const std::vector<std::string>& args);  // cmd_train_clf.cpp
int cmd_score(const std::vector<std::string>& args);      // cmd_score.cpp
int cmd_info(const std::vector<std::string>& args);       // cmd_info.cpp
int cmd_explain(const std::vector<std::string>& args);    // cmd_explain.cpp
int cmd_evaluate_cf(const std::vector<std::string>& args);  // cmd_explain.cpp
int cmd_sweep(const std::vector<std::string>& args);    // cmd_sweep.cpp
int cmd_report(const std::vector<std::string>& args);   // cmd_report.cpp
int cmd_export(const std::vector<std::string>& args);   // cmd_export.cpp
int cmd_status(const std::vector<std::string>& args);   // cmd_status.cpp
int cmd_lm(const std::vector<std::string>& args);       // cmd_lm.cpp: tokenize, init-tiny, init-adapter, logits, generate
int cmd_lm_tokenize(const std::vector<std::string>& args);  // cmd_lm_tokenize.cpp
int cmd_lm_bench(const std::vector<std::string>& args);     // cmd_lm_bench.cpp
int cmd_lm_convert(const std::vector<std::string>& args);   // cmd_lm_convert.cpp
int cmd_lm_init_adapter(const std::vector<std::string>& args);  // cmd_lm_adapter.cpp
int cmd_lm_finetune(const std::vector<std::string>& args);      // cmd_lm_finetune.cpp

}  // namespace sensecf::cli
