// Loading a tokenizer.json and running its pipeline (see tokenizer.h):
//   added-token split -> normalizer -> pre-tokenizer -> BPE model (bpe.cpp)
//   -> post-processor (template), and decode: ids -> tokens -> decoder chain.
// Semantics follow huggingface/tokenizers (tokenizer/added_vocabulary.rs,
// normalizers/, pre_tokenizers/, decoders/) and transformers.js, the reference
// of our golden test. Every part of the file we do not implement is refused
// here, on load, with its JSON path.
#include "sensecf/llm/text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <algorithm>
#include <array>
#include <deque>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "bpe.h"
#include "pretokenize.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "unicode.h"

namespace sensecf::llm {

using nlohmann::json;

// ---- the loaded pipeline -------------------------------------------------------

namespace {

struct AddedToken {
  std::string content;
  int id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

struct NormalizerStep {
  enum Kind { kPrepend, kReplace } kind = kPrepend;
  std::string pattern;  // kReplace: the string replaced
  std::string content;  // kPrepend: the prefix; kReplace: the replacement
};

struct PreTokenizerStep {
  enum Kind { kSplit, kByteLevel, kMetaspace } kind = kSplit;
  SplitPattern pattern = SplitPattern::kLlama3;  // kSplit; kByteLevel with use_regex
  bool use_regex = false;                        // kByteLevel
  bool add_prefix_space = false;                 // kByteLevel
  std::string replacement;                       // kMetaspace
  enum Prepend { kAlways, kFirst, kNever } prepend = kAlways;  // kMetaspace
  bool split = false;                            // kMetaspace
};

struct DecoderStep {
  enum Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace } kind = kFuse;
  std::string pattern, content;  // kReplace; kStrip: content; kMetaspace: replacement in `pattern`
  int start = 0, stop = 0;       // kStrip
  bool prepend = false;          // kMetaspace: strip the prefix space of the first token
};

// GPT-2's byte <-> unicode alphabet (tokenizers pre_tokenizers/byte_level.rs).
struct ByteAlphabet {
  std::array<std::uint32_t, 256> byte_to_cp{};
  std::unordered_map<std::uint32_t, unsigned char> cp_to_byte;
  ByteAlphabet() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_cp[b] = keep ? static_cast<std::uint32_t>(b) : static_cast<std::uint32_t>(256 + n++);
      cp_to_byte[byte_to_cp[b]] = static_cast<unsigned char>(b);
    }
  }
  // The raw bytes of a token in the mapped alphabet; false if a character is not in it.
  bool unmap(std::string_view token, std::string& bytes) const {
    bytes.clear();
    for (std::size_t i = 0; i < token.size();) {
      std::size_t len;
      const std::uint32_t cp = unicode::decode_utf8(token, i, len);
      const auto it = cp_to_byte.find(cp);
      if (it == cp_to_byte.end()) return false;
      bytes += static_cast<char>(it->second);
      i += len;
    }
    return true;
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  for (std::size_t k; (k = s.find(from, i)) != std::string::npos; i = k + from.size()) {
    out.append(s, i, k - i);
    out.append(to);
  }
  out.append(s, i, std::string::npos);
  s.swap(out);
}

bool is_space_at(std::string_view s, std::size_t i, std::size_t& len) {
  return unicode::classify(unicode::decode_utf8(s, i, len)) & unicode::kSpace;
}

std::string_view trim_end(std::string_view s) {
  // Walk forward remembering where the trailing whitespace run starts.
  std::size_t keep = 0;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len;
    const bool space = is_space_at(s, i, len);
    i += len;
    if (!space) keep = i;
  }
  return s.substr(0, keep);
}

std::string_view trim_start(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t len;
    if (!is_space_at(s, i, len)) break;
    i += len;
  }
  return s.substr(i);
}

bool is_word_char_before(std::string_view s, std::size_t end) {
  if (end == 0) return false;
  std::size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  std::size_t len;
  return unicode::classify(unicode::decode_utf8(s, start, len)) & (unicode::kLetter | unicode::kNumber);
}

bool is_word_char_at(std::string_view s, std::size_t i) {
  if (i >= s.size()) return false;
  std::size_t len;
  return unicode::classify(unicode::decode_utf8(s, i, len)) & (unicode::kLetter | unicode::kNumber);
}

}  // namespace

struct Tokenizer::Impl {
  std::string origin;
  bool byte_level = false;  // the model's alphabet is raw bytes (a ByteLevel pre-tokenizer)
  BpeModel model;
  StringIdMap token_to_id;             // token text as written in the file -> id
  std::vector<std::string> id_to_token;
  std::vector<bool> special;           // by id
  std::vector<AddedToken> added;       // longest first
  std::array<bool, 256> added_first_byte{};  // a byte some added token starts with
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;
  std::vector<DecoderStep> decoder;
  std::vector<int> template_prefix, template_suffix;  // post-processor, single sequence
  std::string model_kind;  // for describe()
  std::vector<std::string> id_to_bytes;  // token_bytes(), by id

  // Fills id_to_bytes from the loaded vocabulary, added tokens and decoder.
  void compute_token_bytes();

  // Encodes one run of text between added tokens; `at_input_start`: it starts at offset 0.
  void encode_segment(std::string_view text, bool at_input_start, std::vector<int>& out) const;
};

// ---- encode --------------------------------------------------------------------

void Tokenizer::Impl::encode_segment(std::string_view text, bool at_input_start, std::vector<int>& out) const {
  std::string normalized;
  if (!normalizer.empty()) {
    normalized.assign(text);
    for (const NormalizerStep& step : normalizer) {
      if (step.kind == NormalizerStep::kPrepend) {
        if (!normalized.empty()) normalized.insert(0, step.content);
      } else {
        replace_all(normalized, step.pattern, step.content);
      }
    }
    text = normalized;
  }
  if (text.empty()) return;

  // Pieces are views into `text` or into `owned` (pieces a step rewrote).
  std::vector<std::string_view> pieces{text};
  std::vector<std::string_view> next;
  std::deque<std::string> owned;
  for (const PreTokenizerStep& step : pre_tokenizer) {
    next.clear();
    switch (step.kind) {
      case PreTokenizerStep::kSplit:
        for (std::string_view p : pieces) split_by_pattern(step.pattern, p, next);
        break;
      case PreTokenizerStep::kByteLevel:
        for (std::string_view p : pieces) {
          if (step.add_prefix_space && !starts_with(p, " ")) p = owned.emplace_back(" " + std::string(p));
          if (step.use_regex) {
            split_by_pattern(step.pattern, p, next);
          } else {
            next.push_back(p);
          }
        }
        break;
      case PreTokenizerStep::kMetaspace:
        for (std::size_t k = 0; k < pieces.size(); ++k) {
          std::string s(pieces[k]);
          replace_all(s, " ", step.replacement);
          const bool prepend = step.prepend == PreTokenizerStep::kAlways ||
                               (step.prepend == PreTokenizerStep::kFirst && at_input_start && k == 0);
          if (prepend && !starts_with(s, step.replacement)) s.insert(0, step.replacement);
          const std::string_view all = owned.emplace_back(std::move(s));
          if (!step.split) {
            next.push_back(all);
            continue;
          }
          // Split before every replacement character (MergedWithNext).
          std::size_t begin = 0;
          for (std::size_t at = all.find(step.replacement, 1); at != std::string_view::npos;
               at = all.find(step.replacement, at + 1)) {
            next.push_back(all.substr(begin, at - begin));
            begin = at;
          }
          next.push_back(all.substr(begin));
        }
        break;
    }
    pieces.swap(next);
  }
  for (std::string_view p : pieces) model.encode_word(p, out);
}

std::vector<int> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  const Impl& im = *impl_;
  std::vector<int> out;
  out.reserve(text.size() / 3 + 4);
  if (options.add_special) out = im.template_prefix;

  // Split on added tokens (leftmost, then longest; HF's AhoCorasick LeftmostLongest).
  // lstrip/rstrip of an added token remove the whitespace next to it from the
  // neighbouring text segment.
  std::size_t segment_start = 0;  // start of the pending text segment
  bool rstrip_next = false;       // the previous added token has rstrip
  auto flush = [&](std::size_t end, bool lstrip) {
    std::string_view seg = text.substr(segment_start, end - segment_start);
    if (rstrip_next) seg = trim_start(seg);
    if (lstrip) seg = trim_end(seg);
    if (!seg.empty()) im.encode_segment(seg, seg.data() == text.data(), out);
  };
  if (!im.added.empty()) {
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (!im.added_first_byte[static_cast<unsigned char>(text[i])]) continue;
      const AddedToken* hit = nullptr;
      for (const AddedToken& t : im.added) {  // longest first
        if (t.special && !options.parse_special) continue;
        if (text.compare(i, t.content.size(), t.content) != 0) continue;
        if (t.single_word && (is_word_char_before(text, i) || is_word_char_at(text, i + t.content.size()))) continue;
        hit = &t;
        break;
      }
      if (!hit) continue;
      flush(i, hit->lstrip);
      out.push_back(hit->id);
      rstrip_next = hit->rstrip;
      segment_start = i + hit->content.size();
      i = segment_start - 1;
    }
  }
  flush(text.size(), false);
  if (options.add_special) out.insert(out.end(), im.template_suffix.begin(), im.template_suffix.end());
  return out;
}

// ---- decode --------------------------------------------------------------------

namespace {

// "<0x41>" -> 0x41; -1 if not a byte token.
int byte_token_value(std::string_view t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  int v = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = t[k];
    v *= 16;
    if (c >= '0' && c <= '9') v += c - '0';
    else if (c >= 'A' && c <= 'F') v += c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') v += c - 'a' + 10;
    else return -1;
  }
  return v;
}

// Bytes as UTF-8 text: each invalid sequence becomes U+FFFD (as Rust's from_utf8_lossy).
std::string lossy_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t len;
    const std::uint32_t cp = unicode::decode_utf8(bytes, i, len);
    if (cp == 0xFFFD && len == 1) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(bytes.substr(i, len));
    }
    i += len;
  }
  return out;
}

void apply_decoder(const DecoderStep& step, std::vector<std::string>& tokens) {
  switch (step.kind) {
    case DecoderStep::kByteLevel: {
      std::string bytes, raw;
      for (const std::string& t : tokens) {
        if (byte_alphabet().unmap(t, raw)) {
          bytes += raw;
        } else {
          bytes += t;  // not in the byte alphabet (an added token): its own bytes
        }
      }
      tokens.assign(1, lossy_utf8(bytes));
      break;
    }
    case DecoderStep::kReplace:
      for (std::string& t : tokens) replace_all(t, step.pattern, step.content);
      break;
    case DecoderStep::kByteFallback: {
      std::vector<std::string> out;
      std::string pending;  // bytes of consecutive <0xNN> tokens
      std::size_t n_pending = 0;
      auto flush = [&] {
        if (n_pending == 0) return;
        if (unicode::is_valid_utf8(pending)) {
          out.push_back(pending);
        } else {
          for (std::size_t k = 0; k < n_pending; ++k) out.emplace_back("\xEF\xBF\xBD");
        }
        pending.clear();
        n_pending = 0;
      };
      for (std::string& t : tokens) {
        const int b = byte_token_value(t);
        if (b >= 0) {
          pending += static_cast<char>(b);
          ++n_pending;
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      tokens.swap(out);
      break;
    }
    case DecoderStep::kFuse: {
      std::string all;
      for (const std::string& t : tokens) all += t;
      tokens.assign(1, all);
      break;
    }
    case DecoderStep::kStrip:
      for (std::string& t : tokens) {
        int n = 0;
        while (n < step.start && starts_with(t, step.content)) {
          t.erase(0, step.content.size());
          ++n;
        }
        n = 0;
        while (n < step.stop && t.size() >= step.content.size() &&
               t.compare(t.size() - step.content.size(), step.content.size(), step.content) == 0) {
          t.erase(t.size() - step.content.size());
          ++n;
        }
      }
      break;
    case DecoderStep::kMetaspace:
      for (std::size_t k = 0; k < tokens.size(); ++k) {
        replace_all(tokens[k], step.pattern, " ");
        if (k == 0 && step.prepend && starts_with(tokens[k], " ")) tokens[k].erase(0, 1);
      }
      break;
  }
}

}  // namespace

std::string Tokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    if (id < 0 || id >= static_cast<int>(im.id_to_token.size())) {
      throw Error("decode: token id " + std::to_string(id) + " is out of range [0, " +
                  std::to_string(im.id_to_token.size()) + ") of " + im.origin);
    }
    if (skip_special && im.special[static_cast<std::size_t>(id)]) continue;
    tokens.push_back(im.id_to_token[static_cast<std::size_t>(id)]);
  }
  for (const DecoderStep& step : im.decoder) apply_decoder(step, tokens);
  std::string text;
  for (const std::string& t : tokens) text += t;
  return text;
}

// ---- queries ---------------------------------------------------------------------

std::optional<int> Tokenizer::token_id(std::string_view token) const {
  const int id = impl_->token_to_id.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

const std::string& Tokenizer::token(int id) const {
  static const std::string empty;
  if (id < 0 || id >= static_cast<int>(impl_->id_to_token.size())) return empty;
  return impl_->id_to_token[static_cast<std::size_t>(id)];
}

const std::string& Tokenizer::token_bytes(int id) const {
  static const std::string empty;
  if (id < 0 || id >= static_cast<int>(impl_->id_to_bytes.size())) return empty;
  return impl_->id_to_bytes[static_cast<std::size_t>(id)];
}

// What one token adds to decode()'s output in the middle of a text: the decoder
// chain without the steps that only act at the start of the text (Strip, the
// Metaspace prefix) and without the UTF-8 repair of whole texts.
void Tokenizer::Impl::compute_token_bytes() {
  id_to_bytes.assign(id_to_token.size(), std::string());
  bool byte_fallback = false;
  for (const DecoderStep& step : decoder) byte_fallback |= step.kind == DecoderStep::kByteFallback;
  std::string raw;
  for (std::size_t id = 0; id < id_to_token.size(); ++id) {
    const std::string& token = id_to_token[id];
    std::string& out = id_to_bytes[id];
    if (byte_level) {
      out = byte_alphabet().unmap(token, raw) ? raw : token;  // added tokens are outside the alphabet
      continue;
    }
    const int b = byte_fallback ? byte_token_value(token) : -1;
    if (b >= 0) {
      out.assign(1, static_cast<char>(b));
      continue;
    }
    out = token;
    for (const DecoderStep& step : decoder) {
      if (step.kind == DecoderStep::kReplace) replace_all(out, step.pattern, step.content);
      if (step.kind == DecoderStep::kMetaspace) replace_all(out, step.pattern, " ");
    }
  }
  for (const AddedToken& t : added) id_to_bytes[static_cast<std::size_t>(t.id)] = t.content;
}

int Tokenizer::vocab_size() const { return static_cast<int>(impl_->id_to_token.size()); }

bool Tokenizer::is_special(int id) const {
  return id >= 0 && id < vocab_size() && impl_->special[static_cast<std::size_t>(id)];
}

std::optional<int> Tokenizer::bos_id() const {
  if (impl_->template_prefix.empty()) return std::nullopt;
  return impl_->template_prefix.front();
}

std::vector<int> Tokenizer::eos_ids() const {
  std::vector<int> ids;
  for (const char* name : {"</s>", "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>"}) {
    if (const auto id = token_id(name)) ids.push_back(*id);
  }
  return ids;
}

std::string Tokenizer::describe() const {
  std::ostringstream s;
  s << impl_->model_kind << ", " << vocab_size() << " tokens, " << impl_->model.n_merges() << " merges, "
    << impl_->added.size() << " added";
  return s.str();
}

void Tokenizer::clear_cache() const { impl_->model.clear_cache(); }

// ---- loading -----------------------------------------------------------------------

namespace {

// Errors name the file and the JSON path ("model.merges[12]").
class Loader {
 public:
  explicit Loader(std::string origin) : origin_(std::move(origin)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what, const std::string& hint = {}) const {
    throw Error(origin_ + ": " + (path.empty() ? std::string() : path + ": ") + what, hint);
  }

  const json& field(const json& parent, const std::string& parent_path, const char* key) const {
    const std::string path = parent_path.empty() ? key : parent_path + "." + key;
    if (!parent.is_object()) fail(parent_path, "expected an object, found " + std::string(parent.type_name()));
    const auto it = parent.find(key);
    if (it == parent.end()) fail(path, "missing");
    return *it;
  }
  std::string string_field(const json& parent, const std::string& parent_path, const char* key) const {
    const json& v = field(parent, parent_path, key);
    if (!v.is_string()) fail(join(parent_path, key), "expected a string, found " + std::string(v.type_name()));
    return v.get<std::string>();
  }
  // An optional boolean (absent or null -> fallback).
  bool bool_field(const json& parent, const std::string& parent_path, const char* key, bool fallback) const {
    const auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(join(parent_path, key), "expected true or false, found " + it->dump());
    return it->get<bool>();
  }
  int int_field(const json& parent, const std::string& parent_path, const char* key) const {
    const json& v = field(parent, parent_path, key);
    if (!v.is_number_integer()) fail(join(parent_path, key), "expected an integer, found " + v.dump());
    return v.get<int>();
  }
  static std::string join(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
  }
  static std::string index(const std::string& parent, std::size_t i) { return parent + "[" + std::to_string(i) + "]"; }
  // A pattern {"String": s}; Regex patterns are refused (not for Replace).
  std::string string_pattern(const json& parent, const std::string& parent_path) const {
    const json& p = field(parent, parent_path, "pattern");
    const std::string path = join(parent_path, "pattern");
    if (p.is_object() && p.contains("String") && p["String"].is_string()) return p["String"].get<std::string>();
    if (p.is_object() && p.contains("Regex")) fail(path, "Regex patterns are not supported here (only {\"String\": ...})");
    fail(path, "expected {\"String\": ...}, found " + p.dump());
  }

  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
};

void load_model(const Loader& L, const json& root, Tokenizer::Impl& im) {
  const json& model = L.field(root, "", "model");
  if (!model.is_object()) L.fail("model", "expected an object, found " + std::string(model.type_name()));
  const auto type_it = model.find("type");
  const std::string type = type_it != model.end() && type_it->is_string() ? type_it->get<std::string>() : "";
  if (type != "BPE") {
    if (type.empty()) L.fail("model.type", "missing; expected \"BPE\"", "is this a tokenizer.json of a BPE model?");
    L.fail("model.type", "model type '" + type + "' is not supported (BPE only)",
           "sensecf reads BPE tokenizers (Llama-2/3, Mistral); convert or pick another checkpoint");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      L.fail(Loader::join("model", key), "is not supported (must be null)");
    }
  }
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    const json& d = model["dropout"];
    if (!(d.is_number() && d.get<double>() == 0.0)) L.fail("model.dropout", "BPE dropout is not supported (must be null)");
  }

  // Vocabulary.
  const json& vocab = L.field(model, "model", "vocab");
  if (!vocab.is_object()) L.fail("model.vocab", "expected an object {token: id}, found " + std::string(vocab.type_name()));
  int max_id = -1;
  for (const auto& [token, id_json] : vocab.items()) {
    if (!id_json.is_number_integer() || id_json.get<long long>() < 0 || id_json.get<long long>() > (1 << 24)) {
      L.fail("model.vocab[\"" + token + "\"]", "expected a non-negative integer id, found " + id_json.dump());
    }
    max_id = std::max(max_id, id_json.get<int>());
  }
  im.id_to_token.assign(static_cast<std::size_t>(max_id + 1), std::string());
  std::vector<bool> seen(static_cast<std::size_t>(max_id + 1), false);
  im.token_to_id.reserve(vocab.size() + 512);
  im.model.vocab.reserve(vocab.size());
  std::string bytes;
  for (const auto& [token, id_json] : vocab.items()) {
    const int id = id_json.get<int>();
    if (seen[static_cast<std::size_t>(id)]) {
      L.fail("model.vocab[\"" + token + "\"]",
             "id " + std::to_string(id) + " is also the id of '" + im.id_to_token[static_cast<std::size_t>(id)] + "'");
    }
    seen[static_cast<std::size_t>(id)] = true;
    im.id_to_token[static_cast<std::size_t>(id)] = token;
    im.token_to_id.set(token, id);
    if (im.byte_level) {
      if (byte_alphabet().unmap(token, bytes)) im.model.vocab.set(bytes, id);
    } else {
      im.model.vocab.set(token, id);
    }
  }

  // Options.
  BpeOptions& o = im.model.options;
  o.byte_units = im.byte_level;
  o.ignore_merges = L.bool_field(model, "model", "ignore_merges", false);
  o.byte_fallback = L.bool_field(model, "model", "byte_fallback", false);
  o.fuse_unk = L.bool_field(model, "model", "fuse_unk", false);
  const auto unk = model.find("unk_token");
  if (unk != model.end() && !unk->is_null()) {
    if (!unk->is_string()) L.fail("model.unk_token", "expected a string or null, found " + unk->dump());
    o.unk_id = im.token_to_id.find(unk->get<std::string>());
    if (o.unk_id < 0) L.fail("model.unk_token", "'" + unk->get<std::string>() + "' is not in model.vocab");
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    im.model.byte_token[b] = im.token_to_id.find(name);
  }
  if (o.byte_fallback && std::count(std::begin(im.model.byte_token), std::end(im.model.byte_token), -1) == 256) {
    L.fail("model.byte_fallback", "is true but model.vocab has none of the byte tokens <0x00>..<0xFF>");
  }

  // Merges: "a b" (tokenizers < 0.20) or ["a", "b"].
  const json& merges = L.field(model, "model", "merges");
  if (!merges.is_array()) L.fail("model.merges", "expected an array, found " + std::string(merges.type_name()));
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const json& m = merges[rank];
    std::string left, right;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const std::size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        L.fail(Loader::index("model.merges", rank), "expected \"left right\" (one space), found " + m.dump());
      }
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      L.fail(Loader::index("model.merges", rank), "expected \"left right\" or [\"left\", \"right\"], found " + m.dump());
    }
    // A named string: a temporary `left + right` bound to the pair's reference
    // would be gone before the error message below reads it.
    const std::string joined = left + right;
    const int l = im.token_to_id.find(left), r = im.token_to_id.find(right), merged = im.token_to_id.find(joined);
    for (const auto& [part, id] : {std::pair<const std::string&, int>{left, l}, {right, r}, {joined, merged}}) {
      if (id < 0) {
        L.fail(Loader::index("model.merges", rank), "merge " + m.dump() + " refers to '" + part +
                                                         "', which is not in model.vocab");
      }
    }
    im.model.add_merge(l, r, merged, static_cast<int>(rank));
  }
}

void load_added_tokens(const Loader& L, const json& root, Tokenizer::Impl& im) {
  const auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return;
  if (!it->is_array()) L.fail("added_tokens", "expected an array, found " + std::string(it->type_name()));
  for (std::size_t k = 0; k < it->size(); ++k) {
    const json& a = (*it)[k];
    const std::string path = Loader::index("added_tokens", k);
    AddedToken t;
    t.content = L.string_field(a, path, "content");
    t.id = L.int_field(a, path, "id");
    if (t.content.empty()) L.fail(path + ".content", "is empty");
    if (t.id < 0 || t.id > (1 << 24)) L.fail(path + ".id", "out of range: " + std::to_string(t.id));
    t.special = L.bool_field(a, path, "special", false);
    t.lstrip = L.bool_field(a, path, "lstrip", false);
    t.rstrip = L.bool_field(a, path, "rstrip", false);
    t.single_word = L.bool_field(a, path, "single_word", false);
    if (static_cast<std::size_t>(t.id) >= im.id_to_token.size()) im.id_to_token.resize(static_cast<std::size_t>(t.id) + 1);
    const std::string& existing = im.id_to_token[static_cast<std::size_t>(t.id)];
    if (!existing.empty() && existing != t.content) {
      L.fail(path, "id " + std::to_string(t.id) + " is already the id of '" + existing + "' in model.vocab");
    }
    im.id_to_token[static_cast<std::size_t>(t.id)] = t.content;
    im.token_to_id.set(t.content, t.id);
    im.added_first_byte[static_cast<unsigned char>(t.content[0])] = true;
    im.added.push_back(std::move(t));
  }
  std::stable_sort(im.added.begin(), im.added.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  im.special.assign(im.id_to_token.size(), false);
  for (const AddedToken& t : im.added) im.special[static_cast<std::size_t>(t.id)] = t.special;
}

void load_normalizer(const Loader& L, const json& n, const std::string& path, Tokenizer::Impl& im) {
  if (n.is_null()) return;
  const std::string type = L.string_field(n, path, "type");
  if (type == "Sequence") {
    const json& list = L.field(n, path, "normalizers");
    if (!list.is_array()) L.fail(path + ".normalizers", "expected an array");
    for (std::size_t k = 0; k < list.size(); ++k) load_normalizer(L, list[k], Loader::index(path + ".normalizers", k), im);
  } else if (type == "Prepend") {
    NormalizerStep step;
    step.kind = NormalizerStep::kPrepend;
    step.content = L.string_field(n, path, "prepend");
    im.normalizer.push_back(step);
  } else if (type == "Replace") {
    NormalizerStep step;
    step.kind = NormalizerStep::kReplace;
    step.pattern = L.string_pattern(n, path);
    step.content = L.string_field(n, path, "content");
    im.normalizer.push_back(step);
  } else {
    L.fail(path + ".type", "normalizer '" + type + "' is not supported (Sequence, Prepend, Replace only)",
           "Unicode normalizers (NFC, NFKC, Lowercase, ...) are not implemented");
  }
}

PreTokenizerStep::Prepend prepend_scheme(const Loader& L, const json& p, const std::string& path) {
  if (p.contains("prepend_scheme")) {
    const std::string s = L.string_field(p, path, "prepend_scheme");
    if (s == "always") return PreTokenizerStep::kAlways;
    if (s == "first") return PreTokenizerStep::kFirst;
    if (s == "never") return PreTokenizerStep::kNever;
    L.fail(path + ".prepend_scheme", "expected always, first or never, found '" + s + "'");
  }
  return L.bool_field(p, path, "add_prefix_space", true) ? PreTokenizerStep::kAlways : PreTokenizerStep::kNever;
}

void load_pre_tokenizer(const Loader& L, const json& p, const std::string& path, Tokenizer::Impl& im) {
  if (p.is_null()) return;
  const std::string type = L.string_field(p, path, "type");
  if (!im.pre_tokenizer.empty() && im.pre_tokenizer.back().kind == PreTokenizerStep::kByteLevel) {
    L.fail(path, "a pre-tokenizer after ByteLevel is not supported");
  }
  if (type == "Sequence") {
    const json& list = L.field(p, path, "pretokenizers");
    if (!list.is_array()) L.fail(path + ".pretokenizers", "expected an array");
    for (std::size_t k = 0; k < list.size(); ++k) {
      load_pre_tokenizer(L, list[k], Loader::index(path + ".pretokenizers", k), im);
    }
  } else if (type == "Split") {
    const json& pattern = L.field(p, path, "pattern");
    if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string()) {
      L.fail(path + ".pattern", "expected {\"Regex\": ...}, found " + pattern.dump());
    }
    const auto which = recognize_split_pattern(pattern["Regex"].get<std::string>());
    if (!which) {
      L.fail(path + ".pattern.Regex", "this Split regex is not supported (only the Llama-3 and GPT-2 patterns)",
             "the supported patterns are listed in docs/tokenizers.md");
    }
    const std::string behavior = L.string_field(p, path, "behavior");
    if (behavior != "Isolated") L.fail(path + ".behavior", "'" + behavior + "' is not supported (Isolated only)");
    if (L.bool_field(p, path, "invert", false)) L.fail(path + ".invert", "invert = true is not supported");
    PreTokenizerStep s;
    s.kind = PreTokenizerStep::kSplit;
    s.pattern = *which;
    im.pre_tokenizer.push_back(s);
  } else if (type == "ByteLevel") {
    PreTokenizerStep s;
    s.kind = PreTokenizerStep::kByteLevel;
    s.use_regex = L.bool_field(p, path, "use_regex", true);
    s.pattern = SplitPattern::kGpt2;
    s.add_prefix_space = L.bool_field(p, path, "add_prefix_space", false);
    im.pre_tokenizer.push_back(s);
    im.byte_level = true;
  } else if (type == "Metaspace") {
    PreTokenizerStep s;
    s.kind = PreTokenizerStep::kMetaspace;
    s.replacement = L.string_field(p, path, "replacement");
    s.prepend = prepend_scheme(L, p, path);
    s.split = L.bool_field(p, path, "split", true);
    im.pre_tokenizer.push_back(s);
  } else {
    L.fail(path + ".type", "pre-tokenizer '" + type + "' is not supported (Sequence, Split, ByteLevel, Metaspace only)");
  }
}

void load_decoder(const Loader& L, const json& d, const std::string& path, Tokenizer::Impl& im) {
  if (d.is_null()) return;
  const std::string type = L.string_field(d, path, "type");
  DecoderStep s;
  if (type == "Sequence") {
    const json& list = L.field(d, path, "decoders");
    if (!list.is_array()) L.fail(path + ".decoders", "expected an array");
    for (std::size_t k = 0; k < list.size(); ++k) load_decoder(L, list[k], Loader::index(path + ".decoders", k), im);
    return;
  } else if (type == "ByteLevel") {
    s.kind = DecoderStep::kByteLevel;
  } else if (type == "Replace") {
    s.kind = DecoderStep::kReplace;
    s.pattern = L.string_pattern(d, path);
    s.content = L.string_field(d, path, "content");
  } else if (type == "ByteFallback") {
    s.kind = DecoderStep::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = DecoderStep::kFuse;
  } else if (type == "Strip") {
    s.kind = DecoderStep::kStrip;
    s.content = L.string_field(d, path, "content");
    s.start = L.int_field(d, path, "start");
    s.stop = L.int_field(d, path, "stop");
    // Hugging Face's Strip removes one character (a Rust char) up to start/stop times.
    if (s.content.empty()) L.fail(path + ".content", "is empty; Strip removes one character, e.g. \" \"");
    if (s.start < 0 || s.stop < 0) {
      L.fail(path, "start and stop must be >= 0, found " + std::to_string(s.start) + " and " + std::to_string(s.stop));
    }
  } else if (type == "Metaspace") {
    s.kind = DecoderStep::kMetaspace;
    s.pattern = L.string_field(d, path, "replacement");
    s.prepend = prepend_scheme(L, d, path) != PreTokenizerStep::kNever;
  } else {
    L.fail(path + ".type", "decoder '" + type +
                               "' is not supported (Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)");
  }
  im.decoder.push_back(s);
}

void load_post_processor(const Loader& L, const json& p, const std::string& path, Tokenizer::Impl& im) {
  if (p.is_null()) return;
  const std::string type = L.string_field(p, path, "type");
  if (type == "Sequence") {
    const json& list = L.field(p, path, "processors");
    if (!list.is_array()) L.fail(path + ".processors", "expected an array");
    for (std::size_t k = 0; k < list.size(); ++k) {
      load_post_processor(L, list[k], Loader::index(path + ".processors", k), im);
    }
  } else if (type == "ByteLevel") {
    // Only adjusts offsets; ids are unchanged.
  } else if (type == "TemplateProcessing") {
    const json& single = L.field(p, path, "single");
    const json& specials = L.field(p, path, "special_tokens");
    if (!single.is_array()) L.fail(path + ".single", "expected an array");
    bool after_sequence = false;
    for (std::size_t k = 0; k < single.size(); ++k) {
      const json& item = single[k];
      const std::string item_path = Loader::index(path + ".single", k);
      if (item.is_object() && item.contains("Sequence")) {
        if (after_sequence) L.fail(item_path, "a template with two sequences is not supported for single inputs");
        after_sequence = true;
      } else if (item.is_object() && item.contains("SpecialToken")) {
        const std::string name = L.string_field(item["SpecialToken"], item_path + ".SpecialToken", "id");
        const std::string sp = path + ".special_tokens";
        if (!specials.is_object() || !specials.contains(name)) L.fail(sp, "has no entry '" + name + "'");
        const json& ids = L.field(specials[name], sp + "." + name, "ids");
        if (!ids.is_array()) L.fail(sp + "." + name + ".ids", "expected an array");
        for (const json& id : ids) {
          if (!id.is_number_integer() || id.get<long long>() < 0 ||
              id.get<long long>() >= static_cast<long long>(im.id_to_token.size())) {
            L.fail(sp + "." + name + ".ids", "id " + id.dump() + " is not a token id of this tokenizer");
          }
          (after_sequence ? im.template_suffix : im.template_prefix).push_back(id.get<int>());
        }
      } else {
        L.fail(item_path, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}, found " + item.dump());
      }
    }
  } else {
    L.fail(path + ".type", "post-processor '" + type + "' is not supported (Sequence, ByteLevel, TemplateProcessing)");
  }
}

// How many times longer a chain of Replace steps can make a text: each step
// at most content/pattern times. Hugging Face files replace " " by "▁" (3x);
// a chain that multiplies text a thousandfold is a broken or hostile file, and
// would exhaust memory on the first long input.
void check_growth(const Loader& L, const std::vector<std::pair<std::string, std::string>>& replaces,
                  const std::string& path) {
  constexpr double kMaxGrowth = 1024;
  double growth = 1;
  for (const auto& [pattern, content] : replaces) {
    if (!pattern.empty() && content.size() > pattern.size())
      growth *= static_cast<double>(content.size()) / static_cast<double>(pattern.size());
  }
  if (growth > kMaxGrowth) {
    L.fail(path, "its Replace steps can make a text " + std::to_string(static_cast<long long>(std::min(growth, 1e18))) +
                     " times longer (at most " + std::to_string(static_cast<int>(kMaxGrowth)) + " accepted)",
           "is the file damaged? Real tokenizers replace one character by another");
  }
}

}  // namespace

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& origin) {
  Loader L(origin);
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::parse_error& e) {
    L.fail("", std::string("not valid JSON: ") + e.what(), "is the file truncated (an interrupted download)?");
  }
  if (!root.is_object()) L.fail("", "expected a JSON object at the top level, found " + std::string(root.type_name()));

  auto im = std::make_shared<Impl>();
  im->origin = origin;
  // The pre-tokenizer decides the model's alphabet (bytes or text), so it comes first.
  load_normalizer(L, root.contains("normalizer") ? root["normalizer"] : json(), "normalizer", *im);
  load_pre_tokenizer(L, root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json(), "pre_tokenizer", *im);
  load_model(L, root, *im);
  load_added_tokens(L, root, *im);
  if (im->special.size() != im->id_to_token.size()) im->special.resize(im->id_to_token.size(), false);
  load_post_processor(L, root.contains("post_processor") ? root["post_processor"] : json(), "post_processor", *im);
  load_decoder(L, root.contains("decoder") ? root["decoder"] : json(), "decoder", *im);
  std::vector<std::pair<std::string, std::string>> replaces;
  for (const NormalizerStep& step : im->normalizer)
    if (step.kind == NormalizerStep::kReplace) replaces.emplace_back(step.pattern, step.content);
  check_growth(L, replaces, "normalizer");
  replaces.clear();
  for (const DecoderStep& step : im->decoder)
    if (step.kind == DecoderStep::kReplace) replaces.emplace_back(step.pattern, step.content);
  check_growth(L, replaces, "decoder");
  im->compute_token_bytes();
  im->model_kind = im->byte_level ? "byte-level BPE" : "BPE";
  if (!im->byte_level && im->model.options.byte_fallback) im->model_kind = "sentencepiece-style BPE (byte fallback)";
  return Tokenizer(std::move(im));
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open tokenizer file '" + path + "'", "pass the tokenizer.json of a Hugging Face checkpoint");
  std::ostringstream text;
  text << in.rdbuf();
  return from_json(text.str(), path);
}

}  // namespace sensecf::llm
