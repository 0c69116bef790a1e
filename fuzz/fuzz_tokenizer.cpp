// libFuzzer target for the tokenizer.json loader and the tokenizer pipeline
// (src/llm/text/): added tokens, normalizers, pre-tokenizers, the BPE model,
// post-processor and decoders.
//
// The input is a tokenizer.json, optionally followed by a NUL byte and a
// sample text (without one, a few fixed samples are used). Loading must either
// succeed or throw sensecf::Error. A loaded tokenizer must encode every sample
// to ids in [0, vocab_size()), and decode those ids (with and without special
// tokens) to valid UTF-8 (tokenizer.h: invalid byte sequences become U+FFFD);
// bos_id, eos_ids and token_bytes must stay in range. Independently, the
// sample text goes through the two tiny tokenizers (byte-level "llama",
// sentencepiece-style "mistral"), where decode(encode(s)) == s must hold for
// valid UTF-8 (for "mistral": without U+2581, its space marker), as
// tests/unit/test_tokenizer.cpp checks on the golden corpus. Any other
// exception, crash, leak, hang or sanitizer report is a bug.
//
//   fuzz/campaign.sh tokenizer 600     # a campaign: see fuzz/CMakeLists.txt
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sensecf/core/error.h"
#include "sensecf/llm/text/tokenizer.h"

namespace {

using sensecf::llm::EncodeOptions;
using sensecf::llm::Tokenizer;

// RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

void check_ids(const Tokenizer& t, const std::vector<int>& ids) {
  for (int id : ids)
    if (id < 0 || id >= t.vocab_size()) std::abort();
  try {
    if (!valid_utf8(t.decode(ids)) || !valid_utf8(t.decode(ids, /*skip_special=*/true))) std::abort();
  } catch (const sensecf::Error&) {
    std::abort();  // ids from encode() are in range: decode must not refuse them
  }
  for (int id : ids) (void)t.token_bytes(id);
}

void check_loaded(const Tokenizer& t, const std::vector<std::string>& samples) {
  if (t.vocab_size() < 0 || t.describe().empty()) std::abort();
  if (const auto bos = t.bos_id(); bos && (*bos < 0 || *bos >= t.vocab_size())) std::abort();
  for (int id : t.eos_ids())
    if (id < 0 || id >= t.vocab_size()) std::abort();
  for (const auto& s : samples) {
    for (bool add_special : {false, true}) {
      for (bool parse_special : {false, true}) check_ids(t, t.encode(s, EncodeOptions{add_special, parse_special}));
    }
  }
}

const Tokenizer& tiny(const char* family) {
  static const Tokenizer llama = Tokenizer::from_json(sensecf::llm::tiny_tokenizer_json("llama"), "tiny-llama");
  static const Tokenizer mistral = Tokenizer::from_json(sensecf::llm::tiny_tokenizer_json("mistral"), "tiny-mistral");
  return std::string_view(family) == "llama" ? llama : mistral;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view json = input.substr(0, nul);
  std::vector<std::string> samples;
  if (nul != std::string_view::npos) {
    samples.emplace_back(input.substr(nul + 1));
  } else {
    samples = {"", " ", "Hello world", "glucose 210.8 mg/dL\n", "  tab\there  ", "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80",
               "<s>the</s>", "<|begin_of_text|>hi<|eot_id|>", "\xFF\xC3"};
  }

  try {
    check_loaded(Tokenizer::from_json(json, "fuzz/tokenizer.json"), samples);
  } catch (const sensecf::Error&) {
  }

  // The fuzzed text through the two known-good tokenizers: lossless round trips.
  if (nul != std::string_view::npos && valid_utf8(samples[0])) {
    const std::string& s = samples[0];
    for (const char* family : {"llama", "mistral"}) {
      if (std::string_view(family) == "mistral" && s.find("\xE2\x96\x81") != std::string::npos) continue;
      const Tokenizer& t = tiny(family);
      const auto ids = t.encode(s);
      check_ids(t, ids);
      if (t.decode(ids) != s) std::abort();
      if (t.decode(t.encode(s, true), true) != s) std::abort();
    }
  }
  return 0;
}
