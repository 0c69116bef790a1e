// The remote backend (llmcf/backend.h): an OpenAI-compatible server.
#include <spdlog/spdlog.h>

#include "sensecf/core/error.h"
#include "sensecf/llmcf/answer.h"
#include "sensecf/llmcf/backend.h"

namespace sensecf::llmcf {
namespace {

class RemoteBackend final : public Backend {
 public:
  explicit RemoteBackend(const cf::CfOptions& o) : client_(o.llm.remote) {}

  std::string describe() const override {
    return "remote model " + client_.options().model_name + " at " + client_.options().base_url;
  }
  bool remote() const override { return true; }
  void prepare(const std::string&, bool) override {}

  // One chat request per conversation: system, user, then (assistant,
  // follow-up) per earlier turn. Constrained: the answer's JSON schema as
  // response_format (strict), which OpenAI, vLLM, SGLang and llama.cpp's
  // server enforce while decoding; the parser reads a JSON answer as it
  // reads the <new> block.
  void complete(const data::Schema& schema, const data::Matrix& queries, std::vector<Conversation>& conversations,
                const BackendSettings& s) const override {
    std::vector<remote::ChatRequest> requests(conversations.size());
    for (std::size_t i = 0; i < conversations.size(); ++i) {
      const auto& c = conversations[i];
      auto& r = requests[i];
      r.messages = {{"system", c.prompt.system}, {"user", c.prompt.user}};
      for (const auto& [answer, follow_up] : c.turns) {
        r.messages.push_back({"assistant", answer});
        r.messages.push_back({"user", follow_up});
      }
      r.temperature = c.temperature;
      r.top_p = c.temperature > 0 ? s.top_p : 1.0;
      r.max_tokens = s.max_new_tokens;
      // 31 bits: every server's seed type holds it (llama.cpp: uint32, OpenAI: int).
      r.seed = c.seed & 0x7fffffffULL;
      if (s.constrained) r.json_schema = answer_json_schema(schema, queries.row(c.query));
    }
    client_.complete(requests);
    for (std::size_t i = 0; i < conversations.size(); ++i) {
      conversations[i].answer = std::move(requests[i].answer);
      conversations[i].error = std::move(requests[i].error);
    }
  }

  std::optional<remote::Usage> usage() const override { return client_.usage(); }

 private:
  mutable remote::Client client_;
};

}  // namespace

std::unique_ptr<Backend> make_remote_backend(const cf::CfOptions& options) {
  return std::make_unique<RemoteBackend>(options);
}

}  // namespace sensecf::llmcf
