// The sub-commands of `sensecf`. Each parses its own options (`sensecf <cmd>
// --help`), runs, and returns the process exit code. Errors are thrown as
// sensecf::Error / UsageError and reported by main(). The same sources build
// sensecf-full (every command) and the front-end `sensecf`, which runs only
// what needs no LibTorch and hands the rest to sensecf-full (docs/binaries.md).
#pragma once

#include <chrono>
#include <functional>
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
using CommandFunction = int (*)(const std::vector<std::string>&);
// Every command with its line in `sensecf --help`, `run` taken from `runs`
// (nullptr where `runs` has none: the front-end's commands of sensecf-full).
// sensecf-full and the front-end print the same list.
std::map<std::string, Command> command_table(const std::map<std::string, CommandFunction>& runs);
// The commands both binaries run themselves (command_list.cpp); sensecf-full
// adds info, lm and sweep.
std::map<std::string, CommandFunction> torch_free_commands();

// The build's command set (command_set.cpp: all of them, under MPI;
// command_set_llm.cpp: `lm` alone, no MPI; front/command_set_front.cpp: the
// front-end) and its error handling.
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
// Seconds from `start` to now (steady clock).
double seconds_since(std::chrono::steady_clock::time_point start);
// The launcher's node-local rank (Open MPI, MPICH/PMI, Slurm), else 0.
int launcher_local_rank();
// job_communicator() for data-parallel training on `device`: with more than
// one rank on CUDA, "cuda" becomes this rank's GPU and the gradients go over
// NCCL where the build has it (dist/nccl_communicator.h, command_set.cpp).
std::unique_ptr<Communicator> job_training_communicator(std::string& device);
// After an error: ends MPI cleanly (every_rank) or aborts the job; returns exit_code.
int end_after_error(int exit_code, bool every_rank);

// The front-end hands an invocation that needs LibTorch to sensecf-full, by
// execv with the same argv, before it has logged or written anything: a whole
// command (lm, sweep, info) in hand_over_command, called by main() before the
// command runs, and a case that depends on options (an nn classifier, a
// LibTorch CF method) in hand_over_if, called by parse_and_start after parsing.
// Both do nothing in the other builds, which run everything themselves.
void hand_over_command(const std::string& name, char** argv);
void hand_over_if(const std::function<bool()>& needs_torch);

// Options every command has: [log] level, all_ranks.
void declare_common_options(Options& options, LogOptions& log);
// Parses args; returns false if --help was printed. Then, in the front-end,
// hands the invocation to sensecf-full when needs_torch() says so (see
// hand_over_if; an empty function: never). Installs logging.
bool parse_and_start(Options& options, LogOptions& log, const std::vector<std::string>& args,
                     const std::function<bool()>& needs_torch = {});
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
int cmd_lm_bench_train(const std::vector<std::string>& args);  // cmd_lm_bench_train.cpp
// The model config of `lm bench --shape` (a preset name, tiny-llama/-mistral or
// a config.json path), with num_hidden_layers overridden when layers > 0.
llm::ModelConfig lm_bench_config(const std::string& shape, long layers);  // cmd_lm_bench.cpp
// bench.shape and bench.layers (--shape, --layers), as lm_bench_config reads them.
void declare_bench_shape_options(Options& options, std::string& shape, long& layers);  // cmd_lm_bench.cpp
int cmd_lm_convert(const std::vector<std::string>& args);   // cmd_lm_convert.cpp
int cmd_lm_init_adapter(const std::vector<std::string>& args);  // cmd_lm_adapter.cpp
int cmd_lm_finetune(const std::vector<std::string>& args);      // cmd_lm_finetune.cpp

}  // namespace sensecf::cli
