// CFNOW (de Oliveira, Sörensen & Martens, EJOR 2024; reference code cfnow 0.0.6):
// greedy, random and random-sequential finders, then the tabu-search fine-tune
// of the L1 distance, with a time limit per query.
#pragma once

#include <memory>
#include <string>

#include "sensecf/cf/generator.h"

namespace sensecf::cf {

// strategy: "greedy", "random", "random-sequential".
std::unique_ptr<Generator> make_cfnow(const CfOptions& options, const std::string& strategy);

}  // namespace sensecf::cf
