// The SenseCF method as a CF generator: a local Llama / Mistral model (llm/)
// asked for counterfactuals with the paper's prompt (prompt.h), its answers
// parsed (parse.h), optionally decoded under the answer grammar (grammar.h) and
// checked against the black box f (the verifier loop). Named
//
//     llm:<model>:<mode>[+tag...]
//
//   <model>  a label for the model (the sweep's sweep.llm_models name); the
//            model itself is CfOptions::llm.model_dir (+ adapter)
//   <mode>   zero-shot   the prompt without examples
//            few-shot    cf.llm_shots training rows of the desired class as
//                        examples (nearest to the query by default)
//            fine-tuned  the zero-shot prompt to the model with its LoRA
//                        adapter (CfOptions::llm.adapter, required)
//   tags     +free (constrained decoding off) | +constrained (on) |
//            +verify (cf.llm_verify_candidates answers per query) | +refine
//            (a second round for invalid answers, told f's verdict)
//
// All queries of a batch go through the model together: sequences sorted by
// prompt length, cf.llm_batch_size per generate call; sequence i of query q
// samples from its own stream derive_seed(query_seed(seed, q), "llm/<i>"), so
// a query's answers do not depend on its batch. The first candidate is greedy
// (cf.llm_temperature = 0), further ones sampled at cf.llm_sample_temperature.
//
// Per query the result keeps every raw answer (QueryResult::answers) and how
// many parsed; the CF is the valid parsed candidate closest to the query (L1
// over the range-scaled features: cf::cf_distance), else the first parsed one
// (invalid: it counts against validity), else none (unparseable).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sensecf/cf/generator.h"

namespace sensecf::llm {
class CausalLM;
class Tokenizer;
}  // namespace sensecf::llm

namespace sensecf::llmcf {

inline constexpr const char* kMethodPrefix = "llm:";
inline constexpr const char* kZeroShot = "zero-shot";
inline constexpr const char* kFewShot = "few-shot";
inline constexpr const char* kFineTuned = "fine-tuned";

struct LlmMethod {
  std::string model;  // label
  std::string mode;   // zero-shot | few-shot | fine-tuned
  int constrained = -1;  // -1: cf.llm_constrained; 0: +free; 1: +constrained
  bool verify = false, refine = false;
  std::vector<std::string> tags;  // as written, in order
};
// Parses llm:<model>:<mode>[+tag...]; throws sensecf::UsageError saying what is
// expected.
LlmMethod parse_method(const std::string& name);

// Are prompts to the model in model_dir rendered with its chat template?
// prompt_format chat: yes; plain: no; auto: when the model ships one (a
// chat_template in tokenizer_config.json), as instruct models do and the
// sweep's @tiny models do not. The fine-tuning pairs and the generator agree
// through this one function.
bool chat_prompts(const std::string& model_dir, const std::string& prompt_format);

// Registers the llm: family with cf (cf::register_method_family): after this,
// cf::make_generator and cf::check_method_name know the LLM methods.
void register_methods();

std::unique_ptr<cf::Generator> make_llm_generator(const cf::CfOptions& options);
// The same with a model and tokenizer already in memory (benchmarks at real
// shapes with random weights: CausalLM::random); options.llm.model_dir is then
// only a label, and the stop ids are the config's and the tokenizer's.
std::unique_ptr<cf::Generator> make_llm_generator(const cf::CfOptions& options,
                                                  std::shared_ptr<const llm::CausalLM> model,
                                                  std::shared_ptr<const llm::Tokenizer> tokenizer);

}  // namespace sensecf::llmcf
