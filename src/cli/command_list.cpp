// The commands both binaries run themselves (commands.h: torch_free_commands).
#include "commands.h"

namespace sensecf::cli {

std::map<std::string, CommandFunction> torch_free_commands() {
  return {
      {"synth", cmd_synth},   {"ingest", cmd_ingest},   {"train-clf", cmd_train_clf},
      {"score", cmd_score},   {"explain", cmd_explain}, {"status", cmd_status},
      {"export", cmd_export}, {"report", cmd_report},   {"evaluate-cf", cmd_evaluate_cf},
  };
}

}  // namespace sensecf::cli
