// The restricted unpickler for data.pkl of torch.save archives (see
// torch_bin.h): parse_state_dict_pickle.
//
// A stack machine over the pickle opcodes that torch.save (protocol 2) and
// Python's pickler up to protocol 5 emit for a dict of tensors. It builds plain
// values only; the few globals it accepts are tags that REDUCE interprets
// (OrderedDict() makes a dict, _rebuild_tensor_v2(...) records a tensor), and
// any other global ends the parse before anything is built from it. Values live
// in one arena (a vector) and refer to each other by index: no recursion when
// building or destroying them, and self-referencing containers (legal in a
// pickle) are harmless. Opcodes that walk a container fetched from the memo
// (REDUCE's arguments, OrderedDict(list), size tuples) are charged against a
// budget proportional to the input, so a small hostile pickle cannot make the
// work quadratic. The result is checked as a flat state dict.
//
// Deliberately not implemented: the text opcodes of protocol 0 other than
// PUT/GET, sets, extension registries (EXT1/2/4), out-of-band buffers
// (protocol 5), INST/OBJ and persistent ids other than torch's storage tuples.
#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>
#include <utility>

#include "sensecf/core/error.h"
#include "sensecf/llm/io/torch_bin.h"

namespace sensecf::llm {
namespace {

enum class Kind : std::uint8_t {
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kBytes,
  kTuple,
  kList,
  kDict,
  kGlobal,
  kStorage,
  kTensor
};

const char* kind_name(Kind kind) {
  constexpr const char* kNames[] = {"None",  "bool", "int",  "float",  "str",     "bytes",
                                    "tuple", "list", "dict", "global", "storage", "tensor"};
  return kNames[static_cast<int>(kind)];
}

// What an accepted global does when called by REDUCE.
enum class Callable : std::uint8_t {
  kOrderedDict,
  kRebuildTensor,
  kRebuildTensorV2,
  kRebuildParameter,
  kRebuildParameterWithState,
  kStorageType,  // only valid as the second item of a persistent id
};

struct Value {
  Kind kind = Kind::kNone;
  Callable callable = Callable::kOrderedDict;  // kGlobal
  Dtype dtype = Dtype::kF32;                   // kGlobal of a storage type
  std::int64_t i = 0;                          // kBool, kInt; kTensor: index into the tensors
  double f = 0;                                // kFloat
  std::string s;                               // kString, kBytes; kGlobal: "module.name"; kStorage: key
  std::vector<std::uint32_t> items;            // kTuple, kList; kDict: key, value, key, value, ...
};

struct Opcode {
  std::uint8_t op;
  const char* name;
};
// The opcodes this reader implements (pickletools' names).
constexpr Opcode kOpcodes[] = {{0x80, "PROTO"},       {0x95, "FRAME"},
                               {'.', "STOP"},         {'(', "MARK"},
                               {'0', "POP"},          {'1', "POP_MARK"},
                               {'2', "DUP"},          {'N', "NONE"},
                               {0x88, "NEWTRUE"},     {0x89, "NEWFALSE"},
                               {'J', "BININT"},       {'K', "BININT1"},
                               {'M', "BININT2"},      {0x8a, "LONG1"},
                               {0x8b, "LONG4"},       {'G', "BINFLOAT"},
                               {'X', "BINUNICODE"},   {0x8c, "SHORT_BINUNICODE"},
                               {0x8d, "BINUNICODE8"}, {'U', "SHORT_BINSTRING"},
                               {'T', "BINSTRING"},    {'C', "SHORT_BINBYTES"},
                               {'B', "BINBYTES"},     {0x8e, "BINBYTES8"},
                               {')', "EMPTY_TUPLE"},  {'t', "TUPLE"},
                               {0x85, "TUPLE1"},      {0x86, "TUPLE2"},
                               {0x87, "TUPLE3"},      {']', "EMPTY_LIST"},
                               {'l', "LIST"},         {'a', "APPEND"},
                               {'e', "APPENDS"},      {'}', "EMPTY_DICT"},
                               {'d', "DICT"},         {'s', "SETITEM"},
                               {'u', "SETITEMS"},     {'q', "BINPUT"},
                               {'r', "LONG_BINPUT"},  {0x94, "MEMOIZE"},
                               {'p', "PUT"},          {'h', "BINGET"},
                               {'j', "LONG_BINGET"},  {'g', "GET"},
                               {'c', "GLOBAL"},       {0x93, "STACK_GLOBAL"},
                               {'R', "REDUCE"},       {0x81, "NEWOBJ"},
                               {'b', "BUILD"},        {'Q', "BINPERSID"}};

const char* opcode_name(std::uint8_t op) {
  for (const auto& o : kOpcodes)
    if (o.op == op) return o.name;
  return nullptr;
}

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// "[2, 3]"
std::string show_dims(const std::vector<std::int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

class Unpickler {
 public:
  Unpickler(const std::uint8_t* bytes, std::size_t n_bytes, std::string source)
      : bytes_(bytes), n_(n_bytes), source_(std::move(source)) {}

  TorchStateDict run() {
    if (n_ == 0) throw Error(source_ + ": data.pkl is empty");
    while (true) {
      if (pos_ == n_) {
        throw Error(source_ + ": data.pkl ends at byte " + std::to_string(n_) +
                        " without a STOP opcode (truncated pickle)",
                    "the archive is damaged; download or save it again");
      }
      op_pos_ = pos_;
      op_ = take(1)[0];
      if (op_ == '.') {
        const std::uint32_t root = pop();
        return finish(root);
      }
      step();
    }
  }

 private:
  // --- errors and input ---------------------------------------------------------

  std::string where() const {
    const char* name = opcode_name(op_);
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", op_);
    return source_ + ": data.pkl byte " + std::to_string(op_pos_) + " (" + (name ? name : hex) + ")";
  }

  [[noreturn]] void fail(const std::string& what, const std::string& hint = {}) const {
    throw Error(where() + ": " + what, hint);
  }

  const std::uint8_t* take(std::size_t k) {
    if (n_ - pos_ < k) {
      throw Error(where() + ": truncated pickle: the opcode needs " + std::to_string(k) +
                      " more bytes but data.pkl ends at byte " + std::to_string(n_),
                  "the archive is damaged; download or save it again");
    }
    const std::uint8_t* p = bytes_ + pos_;
    pos_ += k;
    return p;
  }

  std::uint64_t read_le(std::size_t k) {
    const std::uint8_t* p = take(k);
    std::uint64_t v = 0;
    for (std::size_t i = k; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }

  // A text line (GLOBAL, PUT, GET) without its '\n'.
  std::string read_line() {
    const std::uint8_t* start = bytes_ + pos_;
    const void* nl = std::memchr(start, '\n', n_ - pos_);
    if (!nl) fail("truncated pickle: no end of line before data.pkl ends at byte " + std::to_string(n_));
    const auto len = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - start);
    pos_ += len + 1;
    return std::string(reinterpret_cast<const char*>(start), len);
  }

  // Signed little-endian two's complement of n bytes (LONG1, LONG4).
  std::int64_t read_long(std::uint64_t n) {
    if (n > 8) {
      take(n);  // a truncated field is reported as such first
      fail("an integer of " + std::to_string(n) + " bytes does not fit in 64 bits");
    }
    const std::uint64_t u = read_le(static_cast<std::size_t>(n));
    if (n == 0) return 0;
    if (n < 8 && (u >> (8 * n - 1)) != 0)
      return static_cast<std::int64_t>(u | (~std::uint64_t{0} << (8 * n)));
    return static_cast<std::int64_t>(u);
  }

  std::uint64_t read_decimal_line() {
    const std::string line = read_line();
    if (line.empty() || line.size() > 18 ||
        !std::all_of(line.begin(), line.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      fail("memo index " + in_quotes(line.substr(0, 20)) + " is not a decimal number");
    }
    return std::stoull(line);
  }

  // Work done on `n` items of an existing container; see the file comment.
  void charge(std::size_t n) {
    work_ += n;
    if (work_ > 64 * static_cast<std::uint64_t>(n_) + (1u << 20)) {
      fail("the pickle walks its containers over and over (" + std::to_string(work_) + " items for a " +
               std::to_string(n_) + "-byte data.pkl); a state dict never does",
           "the file is hostile or corrupt");
    }
  }

  // --- values and the stack -----------------------------------------------------

  std::uint32_t add(Value v) {
    if (values_.size() >= std::numeric_limits<std::uint32_t>::max()) fail("too many objects");
    values_.push_back(std::move(v));
    return static_cast<std::uint32_t>(values_.size() - 1);
  }
  std::uint32_t add(Kind kind) {
    Value v;
    v.kind = kind;
    return add(std::move(v));
  }

  // Like Python's unpickler, a MARK starts a fresh stack: opcodes cannot pop
  // below it.
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

  std::uint32_t pop() {
    if (stack_.size() <= floor()) fail("stack underflow (corrupt pickle)");
    const std::uint32_t id = stack_.back();
    stack_.pop_back();
    return id;
  }

  std::uint32_t top() {
    if (stack_.size() <= floor()) fail("stack underflow (corrupt pickle)");
    return stack_.back();
  }

  std::vector<std::uint32_t> pop_mark() {
    if (marks_.empty()) fail("no MARK before it (corrupt pickle)");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<std::uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }

  std::uint32_t expect(std::uint32_t id, Kind kind, const std::string& what) {
    if (values_[id].kind != kind) {
      fail(what + " is a " + kind_name(values_[id].kind) + ", expected a " + kind_name(kind));
    }
    return id;
  }

  std::uint32_t make_tuple(std::vector<std::uint32_t> items) {
    Value v;
    v.kind = Kind::kTuple;
    v.items = std::move(items);
    return add(std::move(v));
  }

  void set_items(std::uint32_t dict, const std::vector<std::uint32_t>& pairs) {
    if (pairs.size() % 2)
      fail("an odd number of items (" + std::to_string(pairs.size()) + ") for key/value pairs");
    expect(dict, Kind::kDict, "the target of SETITEM(S)");
    auto& items = values_[dict].items;
    items.insert(items.end(), pairs.begin(), pairs.end());
  }

  void append_items(std::uint32_t list, const std::vector<std::uint32_t>& items) {
    expect(list, Kind::kList, "the target of APPEND(S)");
    auto& target = values_[list].items;
    target.insert(target.end(), items.begin(), items.end());
  }

  std::uint32_t memo_get(std::uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored (corrupt pickle)");
    return it->second;
  }

  // --- globals --------------------------------------------------------------------

  std::uint32_t make_global(const std::string& module, const std::string& name) {
    Value v;
    v.kind = Kind::kGlobal;
    v.s = module + "." + name;
    bool allowed = false;
    if (module == "collections" && name == "OrderedDict") {
      v.callable = Callable::kOrderedDict;
      allowed = true;
    } else if (module == "torch._utils") {
      const std::pair<const char*, Callable> functions[] = {
          {"_rebuild_tensor", Callable::kRebuildTensor},
          {"_rebuild_tensor_v2", Callable::kRebuildTensorV2},
          {"_rebuild_parameter", Callable::kRebuildParameter},
          {"_rebuild_parameter_with_state", Callable::kRebuildParameterWithState},
      };
      for (const auto& [function, callable] : functions) {
        if (name == function) {
          v.callable = callable;
          allowed = true;
        }
      }
    } else if (module == "torch") {
      if (const auto dtype = parse_torch_storage_name(name)) {
        v.callable = Callable::kStorageType;
        v.dtype = *dtype;
        allowed = true;
      }
    }
    if (!allowed) refuse_global(v.s, module, name);
    return add(std::move(v));
  }

  [[noreturn]] void refuse_global(const std::string& full, const std::string& module,
                                  const std::string& name) const {
    std::string hint =
        "sensecf reads state dicts (torch.save(model.state_dict(), ...)) through an allowlist of globals and "
        "never runs pickle code; load the file in Python only if you trust it, and re-save its state dict";
    const bool storage = name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0;
    if ((module == "torch" || module == "torch.storage") && storage) {
      hint =
          "tensors of that storage type are not supported: weights must be stored as Float, Half, BFloat16 "
          "or "
          "Double (integer and bool buffers are read too); torch.UntypedStorage, quantized and complex "
          "storages "
          "are not";
    } else if (module.rfind("__torch__", 0) == 0) {
      hint = "this looks like a TorchScript archive (torch.jit.save); save the model's state_dict() instead";
    } else if (module == "torch._utils") {
      hint = "only dense tensors (_rebuild_tensor_v2) and parameters are supported, not " + name;
    }
    throw Error("refusing to run pickle global " + in_quotes(full) + " in " + source_ + " (data.pkl byte " +
                    std::to_string(op_pos_) + "); a state dict never needs it",
                hint);
  }

  // --- REDUCE, BUILD, persistent ids -------------------------------------------------

  std::int64_t int_arg(std::uint32_t id, const std::string& what) {
    return values_[expect(id, Kind::kInt, what)].i;
  }

  std::vector<std::int64_t> int_tuple(std::uint32_t id, const std::string& what) {
    const Kind kind = values_[id].kind;
    if (kind != Kind::kTuple && kind != Kind::kList) {
      fail(what + " is a " + kind_name(kind) + ", expected a tuple of ints");
    }
    charge(values_[id].items.size());
    std::vector<std::int64_t> out;
    for (const auto item : values_[id].items) {
      if (values_[item].kind != Kind::kInt) {
        fail(what + " holds a " + std::string(kind_name(values_[item].kind)) + ", expected ints");
      }
      out.push_back(values_[item].i);
    }
    return out;
  }

  // _rebuild_tensor(storage, offset, size, stride) and
  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]).
  std::uint32_t rebuild_tensor(const std::vector<std::uint32_t>& args, Callable callable) {
    const char* fn = callable == Callable::kRebuildTensor ? "_rebuild_tensor" : "_rebuild_tensor_v2";
    const bool v2 = callable == Callable::kRebuildTensorV2;
    if (v2 ? (args.size() != 6 && args.size() != 7) : args.size() != 4) {
      fail(std::string(fn) + " takes " + (v2 ? "6 or 7" : "4") + " arguments, got " +
           std::to_string(args.size()));
    }
    const std::string arg = std::string(fn) + " argument ";
    const std::uint32_t storage = expect(args[0], Kind::kStorage, arg + "1 (storage)");
    TorchTensorInfo t;
    t.storage_key = values_[storage].s;
    t.dtype = storages_.at(t.storage_key).dtype;
    t.storage_offset = int_arg(args[1], arg + "2 (storage_offset)");
    t.shape = int_tuple(args[2], arg + "3 (size)");
    t.stride = int_tuple(args[3], arg + "4 (stride)");
    if (t.shape.size() != t.stride.size()) {
      fail(arg + "3 (size) " + show_dims(t.shape) + " and 4 (stride) " + show_dims(t.stride) +
           " have different lengths");
    }
    if (v2) {
      expect(args[4], Kind::kBool, arg + "5 (requires_grad)");
      expect(args[5], Kind::kDict, arg + "6 (backward_hooks)");  // OrderedDict(); hooks are not saved
    }
    tensors_.push_back(std::move(t));
    Value v;
    v.kind = Kind::kTensor;
    v.i = static_cast<std::int64_t>(tensors_.size() - 1);
    return add(std::move(v));
  }

  std::uint32_t call(std::uint32_t fn, const std::vector<std::uint32_t>& args) {
    const Value& f = values_[fn];
    switch (f.callable) {
      case Callable::kOrderedDict: {
        // OrderedDict() or OrderedDict([(key, value), ...]).
        if (args.size() > 1) fail("OrderedDict takes at most 1 argument, got " + std::to_string(args.size()));
        Value d;
        d.kind = Kind::kDict;
        if (args.size() == 1) {
          const Kind kind = values_[args[0]].kind;
          if (kind != Kind::kList && kind != Kind::kTuple) {
            fail(std::string("OrderedDict's argument is a ") + kind_name(kind) +
                 ", expected a list of pairs");
          }
          charge(values_[args[0]].items.size());
          for (const auto pair : values_[args[0]].items) {
            const Value& p = values_[pair];
            if (p.kind != Kind::kTuple || p.items.size() != 2)
              fail("OrderedDict's argument holds a non-pair");
            d.items.push_back(p.items[0]);
            d.items.push_back(p.items[1]);
          }
        }
        return add(std::move(d));
      }
      case Callable::kRebuildTensor:
      case Callable::kRebuildTensorV2:
        return rebuild_tensor(args, f.callable);
      case Callable::kRebuildParameter:
      case Callable::kRebuildParameterWithState: {
        // _rebuild_parameter(data, requires_grad, backward_hooks[, state]): the tensor itself.
        const std::size_t expected = f.callable == Callable::kRebuildParameter ? 3 : 4;
        if (args.size() != expected) {
          fail(f.s + " takes " + std::to_string(expected) + " arguments, got " + std::to_string(args.size()));
        }
        return expect(args[0], Kind::kTensor, f.s + " argument 1 (data)");
      }
      case Callable::kStorageType:
        fail(f.s + " is called directly; a storage class may only appear in a persistent id");
    }
    fail("unknown callable");
  }

  // ('storage', torch.<T>Storage, key, location, numel)
  std::uint32_t persistent_load(std::uint32_t pid) {
    const Value& p = values_[pid];
    if (p.kind != Kind::kTuple || p.items.size() != 5 || values_[p.items[0]].kind != Kind::kString ||
        values_[p.items[0]].s != "storage") {
      fail("persistent id is not ('storage', type, key, location, numel)",
           "torch.save writes that tuple for every storage; other persistent ids are not supported");
    }
    const Value& type = values_[p.items[1]];
    if (type.kind != Kind::kGlobal || type.callable != Callable::kStorageType) {
      fail(std::string("persistent id's storage type is a ") + kind_name(type.kind) +
           ", expected torch.<T>Storage");
    }
    const std::string key = values_[expect(p.items[2], Kind::kString, "persistent id's key")].s;
    expect(p.items[3], Kind::kString, "persistent id's location");
    const std::int64_t numel = int_arg(p.items[4], "persistent id's numel");
    if (numel < 0) fail("storage " + in_quotes(key) + " has a negative size " + std::to_string(numel));
    TorchStorage s;
    s.key = key;
    s.dtype = type.dtype;
    s.numel = static_cast<std::uint64_t>(numel);
    std::uint64_t n_bytes = 0;
    if (__builtin_mul_overflow(s.numel, dtype_size(s.dtype), &n_bytes)) {
      fail("storage " + in_quotes(key) + " of " + std::to_string(numel) +
           " elements has more bytes than fit in 64 bits");
    }
    const auto [it, inserted] = storages_.emplace(key, s);
    if (!inserted && (it->second.dtype != s.dtype || it->second.numel != s.numel)) {
      fail("storage " + in_quotes(key) + " is declared twice, as " + dtype_name(it->second.dtype) + " × " +
           std::to_string(it->second.numel) + " and as " + dtype_name(s.dtype) + " × " +
           std::to_string(s.numel));
    }
    Value v;
    v.kind = Kind::kStorage;
    v.s = key;
    return add(std::move(v));
  }

  // --- one opcode -----------------------------------------------------------------

  void push(std::uint32_t id) { stack_.push_back(id); }

  void push_int(std::int64_t i) {
    Value v;
    v.kind = Kind::kInt;
    v.i = i;
    push(add(std::move(v)));
  }

  void push_string(Kind kind, std::uint64_t len) {
    const std::uint8_t* p = take(static_cast<std::size_t>(len));
    Value v;
    v.kind = kind;
    v.s.assign(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
    push(add(std::move(v)));
  }

  void memo_put(std::uint64_t index) { memo_[index] = top(); }

  void step() {
    switch (op_) {
      case 0x80: {  // PROTO
        const int version = take(1)[0];
        if (version > 5)
          fail("pickle protocol " + std::to_string(version) + " is newer than 5, the highest known");
        break;
      }
      case 0x95: {  // FRAME: a length hint only
        const std::uint64_t len = read_le(8);
        if (len > n_ - pos_) fail("frame of " + std::to_string(len) + " bytes runs past the end of data.pkl");
        break;
      }
      case '(':
        marks_.push_back(stack_.size());
        break;
      case '0':
        pop();
        break;
      case '1':
        pop_mark();
        break;
      case '2':
        push(top());
        break;
      case 'N':
        push(add(Kind::kNone));
        break;
      case 0x88:
      case 0x89: {
        Value v;
        v.kind = Kind::kBool;
        v.i = op_ == 0x88;
        push(add(std::move(v)));
        break;
      }
      case 'J':
        push_int(static_cast<std::int32_t>(static_cast<std::uint32_t>(read_le(4))));
        break;
      case 'K':
        push_int(static_cast<std::int64_t>(read_le(1)));
        break;
      case 'M':
        push_int(static_cast<std::int64_t>(read_le(2)));
        break;
      case 0x8a:
        push_int(read_long(read_le(1)));
        break;
      case 0x8b:
        push_int(read_long(read_le(4)));
        break;
      case 'G': {  // big-endian IEEE double
        const std::uint8_t* p = take(8);
        std::uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
        Value v;
        v.kind = Kind::kFloat;
        std::memcpy(&v.f, &bits, sizeof v.f);
        push(add(std::move(v)));
        break;
      }
      case 'X':
        push_string(Kind::kString, read_le(4));
        break;
      case 0x8c:
        push_string(Kind::kString, read_le(1));
        break;
      case 0x8d:
        push_string(Kind::kString, read_le(8));
        break;
      case 'U':
        push_string(Kind::kString, read_le(1));
        break;
      case 'T': {
        const auto len = static_cast<std::int32_t>(static_cast<std::uint32_t>(read_le(4)));
        if (len < 0) fail("negative string length " + std::to_string(len));
        push_string(Kind::kString, static_cast<std::uint64_t>(len));
        break;
      }
      case 'C':
        push_string(Kind::kBytes, read_le(1));
        break;
      case 'B':
        push_string(Kind::kBytes, read_le(4));
        break;
      case 0x8e:
        push_string(Kind::kBytes, read_le(8));
        break;
      case ')':
        push(make_tuple({}));
        break;
      case 't':
        push(make_tuple(pop_mark()));
        break;
      case 0x85:
      case 0x86:
      case 0x87: {
        std::vector<std::uint32_t> items(static_cast<std::size_t>(op_ - 0x84));
        for (auto i = items.size(); i-- > 0;) items[i] = pop();
        push(make_tuple(std::move(items)));
        break;
      }
      case ']':
        push(add(Kind::kList));
        break;
      case 'l': {
        Value v;
        v.kind = Kind::kList;
        v.items = pop_mark();
        push(add(std::move(v)));
        break;
      }
      case 'a': {
        const std::uint32_t item = pop();
        append_items(top(), {item});
        break;
      }
      case 'e': {
        const auto items = pop_mark();
        append_items(top(), items);
        break;
      }
      case '}':
        push(add(Kind::kDict));
        break;
      case 'd': {
        const auto items = pop_mark();
        const std::uint32_t dict = add(Kind::kDict);
        set_items(dict, items);
        push(dict);
        break;
      }
      case 's': {
        const std::uint32_t value = pop();
        const std::uint32_t key = pop();
        set_items(top(), {key, value});
        break;
      }
      case 'u': {
        const auto items = pop_mark();
        set_items(top(), items);
        break;
      }
      case 'q':
        memo_put(read_le(1));
        break;
      case 'r':
        memo_put(read_le(4));
        break;
      case 0x94:
        memo_put(memo_.size());
        break;
      case 'p':
        memo_put(read_decimal_line());
        break;
      case 'h':
        push(memo_get(read_le(1)));
        break;
      case 'j':
        push(memo_get(read_le(4)));
        break;
      case 'g':
        push(memo_get(read_decimal_line()));
        break;
      case 'c': {
        const std::string module = read_line();
        const std::string name = read_line();
        push(make_global(module, name));
        break;
      }
      case 0x93: {
        const std::uint32_t name = expect(pop(), Kind::kString, "STACK_GLOBAL's name");
        const std::uint32_t module = expect(pop(), Kind::kString, "STACK_GLOBAL's module");
        push(make_global(values_[module].s, values_[name].s));
        break;
      }
      case 'R': {
        const std::uint32_t args = expect(pop(), Kind::kTuple, "REDUCE's arguments");
        const std::uint32_t fn = expect(pop(), Kind::kGlobal, "REDUCE's callable");
        charge(values_[args].items.size());
        const std::vector<std::uint32_t> items = values_[args].items;
        push(call(fn, items));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only OrderedDict
        expect(pop(), Kind::kTuple, "NEWOBJ's arguments");
        const std::uint32_t cls = expect(pop(), Kind::kGlobal, "NEWOBJ's class");
        if (values_[cls].callable != Callable::kOrderedDict)
          fail("NEWOBJ of " + values_[cls].s + " is not supported");
        push(add(Kind::kDict));
        break;
      }
      case 'b': {  // BUILD: an OrderedDict's attributes (a state dict's _metadata) are dropped
        const std::uint32_t state = pop();
        const Kind target = values_[top()].kind;
        if (target != Kind::kDict) {
          fail(std::string("BUILD sets the state of a ") + kind_name(target) +
               "; only an OrderedDict's attributes (_metadata) are accepted");
        }
        (void)state;
        break;
      }
      case 'Q':
        push(persistent_load(pop()));
        break;
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op_);
        const char* name = opcode_name(op_);
        fail(std::string("opcode ") + (name ? name : hex) + " is not one a state dict needs",
             "torch.save writes pickle protocol 2; this data.pkl was written by something else");
      }
    }
  }

  // --- the result -----------------------------------------------------------------

  std::string describe(std::uint32_t id) const {
    const Value& v = values_[id];
    if (v.kind == Kind::kDict || v.kind == Kind::kList || v.kind == Kind::kTuple) {
      const std::size_t n = v.kind == Kind::kDict ? v.items.size() / 2 : v.items.size();
      return std::string("a ") + kind_name(v.kind) + " of " + std::to_string(n) +
             (n == 1 ? " item" : " items");
    }
    return std::string("a ") + kind_name(v.kind);
  }

  // A value of the top-level dict that is a dict holding tensors: the checkpoint
  // nests its state dict ({"state_dict": {...}, "epoch": 3}).
  [[noreturn]] void refuse_nested(const std::vector<std::uint32_t>& pairs, std::size_t bad) {
    std::size_t best = pairs.size(), best_tensors = 0;
    for (std::size_t k = 0; k < pairs.size(); k += 2) {
      const Value& value = values_[pairs[k + 1]];
      if (value.kind != Kind::kDict || values_[pairs[k]].kind != Kind::kString) continue;
      charge(value.items.size());
      std::size_t n = 0;
      for (std::size_t j = 1; j < value.items.size(); j += 2)
        n += values_[value.items[j]].kind == Kind::kTensor;
      if (n > best_tensors) {
        best = k;
        best_tensors = n;
      }
    }
    if (best < pairs.size()) {
      const std::string key = values_[pairs[best]].s;
      std::string others;
      for (std::size_t k = 0, shown = 0; k < pairs.size() && shown < 4; k += 2) {
        if (k == best || values_[pairs[k]].kind != Kind::kString) continue;
        others += (shown++ ? ", " : "") + in_quotes(values_[pairs[k]].s);
      }
      throw Error(source_ + ": holds a checkpoint dict, not a state dict: its key " + in_quotes(key) +
                      " is a dict of " + std::to_string(best_tensors) + " tensors" +
                      (others.empty() ? "" : " (other keys: " + others + ")"),
                  "save the inner state dict on its own: python -c \"import torch; torch.save(torch.load('" +
                      source_ + "', map_location='cpu')[" + in_quotes(key) + "], 'pytorch_model.bin')\"");
    }
    throw Error(source_ + ": the value of " + in_quotes(values_[pairs[bad]].s) + " is " +
                    describe(pairs[bad + 1]) + ", not a tensor; a state dict maps names to tensors",
                "save model.state_dict() (tensors only) with torch.save");
  }

  void check_extent(const TorchTensorInfo& t) const {
    const TorchStorage& s = storages_.at(t.storage_key);
    const std::string what = source_ + ": tensor " + in_quotes(t.name) + " (shape " + show_dims(t.shape) +
                             ", stride " + show_dims(t.stride) + ", offset " +
                             std::to_string(t.storage_offset) + ")";
    if (t.storage_offset < 0) throw Error(what + ": negative storage offset");
    std::uint64_t numel = 1, last = static_cast<std::uint64_t>(t.storage_offset);
    bool overflow = false;
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] < 0 || t.stride[d] < 0) throw Error(what + ": negative size or stride");
      overflow = overflow || __builtin_mul_overflow(numel, static_cast<std::uint64_t>(t.shape[d]), &numel);
    }
    if (overflow) throw Error(what + ": more elements than fit in 64 bits");
    if (numel == 0) return;  // views nothing
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      std::uint64_t step = 0;
      overflow = overflow || __builtin_mul_overflow(static_cast<std::uint64_t>(t.shape[d] - 1),
                                                    static_cast<std::uint64_t>(t.stride[d]), &step);
      overflow = overflow || __builtin_add_overflow(last, step, &last);
    }
    if (overflow || last >= s.numel) {
      throw Error(what + " reaches element " +
                      (overflow ? std::string("beyond 2^64") : std::to_string(last)) + " of storage " +
                      in_quotes(s.key) + ", which has " + std::to_string(s.numel) + " elements",
                  "the archive is damaged or hand-made; torch.save never writes such a view");
    }
  }

  TorchStateDict finish(std::uint32_t root) {
    const Value& r = values_[root];
    if (r.kind != Kind::kDict) {
      throw Error(
          source_ + ": data.pkl holds " + describe(root) + ", not a state dict (a dict of name -> tensor)",
          "save model.state_dict() with torch.save");
    }
    const std::vector<std::uint32_t> pairs = r.items;
    TorchStateDict out;
    std::map<std::string, std::size_t> seen;
    for (std::size_t k = 0; k < pairs.size(); k += 2) {
      const Value& key = values_[pairs[k]];
      if (key.kind != Kind::kString) {
        throw Error(source_ + ": a key of the state dict is " + describe(pairs[k]) + ", not a string");
      }
      const Value& value = values_[pairs[k + 1]];
      if (value.kind != Kind::kTensor) refuse_nested(pairs, k);
      if (!seen.emplace(key.s, k).second)
        throw Error(source_ + ": the state dict names " + in_quotes(key.s) + " twice");
      TorchTensorInfo t = tensors_[static_cast<std::size_t>(value.i)];
      t.name = key.s;
      check_extent(t);
      out.tensors.push_back(std::move(t));
    }
    for (const auto& t : out.tensors) out.storages.emplace(t.storage_key, storages_.at(t.storage_key));
    return out;
  }

  const std::uint8_t* bytes_;
  std::size_t n_;
  std::string source_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  std::uint8_t op_ = 0;
  std::uint64_t work_ = 0;
  std::vector<Value> values_;
  std::vector<std::uint32_t> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, std::uint32_t> memo_;
  std::vector<TorchTensorInfo> tensors_;
  std::map<std::string, TorchStorage> storages_;
};

}  // namespace

TorchStateDict parse_state_dict_pickle(const std::uint8_t* bytes, std::size_t n_bytes,
                                       const std::string& source) {
  return Unpickler(bytes, n_bytes, source).run();
}

}  // namespace sensecf::llm
