// Where the LLM CF generator's answers come from. The generator (generator.h)
// builds prompts, parses answers and asks f; a Backend only turns
// conversations into answer texts:
//
//   local   a Llama / Mistral model in this process (llm/), prompts through
//           its chat template or as plain text, a batch of sequences per
//           generate call, constrained decoding by the answer grammar
//           (grammar.h) on the logits
//   remote  an OpenAI-compatible server (remote/client.h): one chat request
//           per conversation, the response cache, retries and rate limits;
//           constrained decoding becomes the answer's JSON schema
//           (answer_json_schema) in response_format, where the server
//           supports it
//
// The generator asks for the remote one when CfOptions::llm.remote.base_url is
// set, else the local one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sensecf/cf/generator.h"
#include "sensecf/llmcf/prompt.h"
#include "sensecf/remote/client.h"

namespace sensecf::llm {
class CausalLM;
class Tokenizer;
}  // namespace sensecf::llm

namespace sensecf::llmcf {

// One conversation to complete: a query's prompt, earlier turns (answer,
// follow-up) of a refine round, and the sampling stream.
struct Conversation {
  std::size_t query = 0;  // row of the batch's queries
  Prompt prompt;
  std::vector<std::pair<std::string, std::string>> turns;
  std::uint64_t seed = 0;
  double temperature = 0;
  // Filled by Backend::complete.
  std::string answer;
  std::string error;  // "": answered; else why there is no answer (a remote request given up on)
};

struct BackendSettings {
  bool constrained = false;  // answers under the answer grammar / JSON schema
  int max_new_tokens = 0;    // > 0
  double top_p = 1;
  int threads = 0;           // local: LibTorch threads (0: all cores)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string describe() const = 0;
  virtual bool remote() const = 0;
  // Loads what the backend needs (a model, a tokenizer, the vocabulary trie
  // of constrained decoding); throws sensecf::Error naming `method`.
  virtual void prepare(const std::string& method, bool constrained) = 0;
  // Fills answer (or error) of every conversation; `queries` holds the rows
  // (schema.size() values each) for the answer grammar.
  virtual void complete(const data::Schema& schema, const data::Matrix& queries,
                        std::vector<Conversation>& conversations, const BackendSettings& settings) const = 0;
  // Remote: the client's requests, cache hits, tokens and cost so far.
  virtual std::optional<remote::Usage> usage() const { return std::nullopt; }
};

// The local backend of options.llm (model_dir, adapter, device, ...), or of a
// model and tokenizer already in memory.
std::unique_ptr<Backend> make_local_backend(const cf::CfOptions& options,
                                            std::shared_ptr<const llm::CausalLM> model = nullptr,
                                            std::shared_ptr<const llm::Tokenizer> tokenizer = nullptr);
// The remote backend of options.llm.remote (base_url set); throws UsageError
// for bad remote options.
std::unique_ptr<Backend> make_remote_backend(const cf::CfOptions& options);

}  // namespace sensecf::llmcf
