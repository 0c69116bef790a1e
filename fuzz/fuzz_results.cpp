// libFuzzer target for the results-file reader of `sensecf report`
// (store::read_results, src/store/results.cpp and src/store/h5file.cpp): root
// attributes, the compound tables and the /counterfactuals/<key> groups with
// their shape checks.
//
// Structure-aware: HDF5 itself is not robust to arbitrary corrupt bytes (that
// is the HDF5 library's domain, not ours), so the input does not become the
// file. It drives a FuzzedDataProvider that builds a small HDF5 file with the
// real layout: ResultsWriter writes fuzzed rows and CF arrays (NaN, inf, odd
// strings), then fuzzed edits of what a damaged, hand-edited or foreign file
// may hold: root attributes missing, not text, not scalar, variable-length;
// tables replaced by ones with other columns, column types or shapes, or by
// plain arrays; /counterfactuals/<key> groups with datasets missing or of other
// dtypes, ranks and shapes (huge ones included, never written), attributes
// missing or odd (features not JSON or not a list of strings, seed not a
// number). read_results must either return Results whose invariants hold
// (re-checked here: every CF array sized n x d from its features) or throw
// sensecf::Error; any other exception, crash, leak, hang or sanitizer report is
// a bug.
//
//   fuzz/campaign.sh results 600     # a campaign: see fuzz/CMakeLists.txt
// SENSECF_FUZZ_VERBOSE=1 build/fuzz/fuzz_results FILE prints why read_results refused an input;
// SENSECF_FUZZ_ABORT_ON=TEXT turns refusals whose message contains TEXT into crashes.
#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sensecf/core/error.h"
#include "sensecf/store/h5file.h"
#include "sensecf/store/results.h"
#include "temp_file.h"

namespace {

using sensecf::fuzz::temp_file;

using namespace sensecf::store;

// Names the reader looks for, and a few it does not.
const char* const kRootAttributes[] = {"format_version", "sensecf_version", "git_sha", "config", "config_hash",
                                       "started",        "hosts",           "slurm_job_id", "mpi_size"};
const char* const kTables[] = {"/tasks", "/metrics/cf", "/metrics/clf", "/metrics/train", "/metrics/usage"};
const char* const kColumns[] = {"key", "kind", "label", "method", "scenario", "model", "seed", "ratio", "status",
                                "attempt", "rank", "host", "device", "started", "seconds", "message", "purpose",
                                "factual_class", "n_queries", "validity", "parse_rate", "f1", "auc", "step", "loss",
                                "requests", "cost_usd", "extra"};
const char* const kArrays[] = {"query_row", "factual", "counterfactual", "target", "probability",
                               "valid",     "found",   "answer",         "patient", "extra"};
const char* const kGroupAttributes[] = {"features", "method", "scenario", "purpose", "seed", "schema"};

template <std::size_t N>
const char* pick(FuzzedDataProvider& in, const char* const (&names)[N]) {
  return names[in.ConsumeIntegralInRange<std::size_t>(0, N - 1)];
}

std::string small_text(FuzzedDataProvider& in, std::size_t max = 24) { return in.ConsumeRandomLengthString(max); }

double value(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 5)) {
    case 0: return std::numeric_limits<double>::quiet_NaN();
    case 1: return std::numeric_limits<double>::infinity();
    case 2: return -std::numeric_limits<double>::infinity();
    case 3: return in.ConsumeFloatingPoint<double>();
    default: return in.ConsumeFloatingPointInRange<double>(-100, 100);
  }
}

// Text for the features attribute: a JSON list of names, or something else.
std::string features_json(FuzzedDataProvider& in, std::size_t d) {
  switch (in.ConsumeIntegralInRange(0, 7)) {
    case 0: return small_text(in, 40);  // anything
    case 1: return "[1, 2]";
    case 2: return "{\"a\": 1}";
    case 3: return "[\"a\", null]";
    case 4: return "";
    default: {
      std::string s = "[";
      for (std::size_t j = 0; j < d; ++j) s += (j ? ",\"f" : "\"f") + std::to_string(j) + "\"";
      return s + "]";
    }
  }
}

// ---- the writer's view: rows and CF arrays ------------------------------------

CfArrays cf_arrays(FuzzedDataProvider& in) {
  CfArrays c;
  c.key = in.ConsumeBool() ? "k0" : small_text(in, 16);  // k0, k1: the groups edit() changes
  c.method = small_text(in, 12);
  c.scenario = small_text(in, 8);
  c.purpose = in.ConsumeBool() ? "table3" : small_text(in, 8);
  c.seed = in.ConsumeIntegral<long long>();
  c.n = in.ConsumeIntegralInRange<std::size_t>(0, 4);
  c.d = in.ConsumeIntegralInRange<std::size_t>(0, 4);
  // Feature names are UTF-8 in every file sensecf writes (the CSV reader
  // refuses other bytes; the writer stores them as JSON): ASCII here.
  for (std::size_t j = 0; j < c.d; ++j) {
    std::string name = small_text(in, 8);
    for (char& ch : name)
      if (static_cast<unsigned char>(ch) >= 0x80) ch = '?';
    c.features.push_back(name);
  }
  for (std::size_t k = 0; k < c.n * c.d; ++k) {
    c.factual.push_back(value(in));
    c.counterfactual.push_back(value(in));
  }
  for (std::size_t i = 0; i < c.n; ++i) {
    c.query_row.push_back(in.ConsumeIntegral<long long>());
    c.target.push_back(in.ConsumeIntegralInRange<long long>(-1, 2));
    c.probability.push_back(value(in));
    c.valid.push_back(in.ConsumeIntegralInRange<long long>(0, 1));
    c.found.push_back(in.ConsumeIntegralInRange<long long>(0, 1));
    c.answer.push_back(small_text(in, 30));
  }
  if (in.ConsumeBool())
    for (std::size_t i = 0; i < c.n; ++i) c.patient.push_back(small_text(in, 8));
  if (in.ConsumeBool()) c.schema = small_text(in, 40);
  return c;
}

void write_rows(FuzzedDataProvider& in, ResultsWriter& writer) {
  const int n_tasks = in.ConsumeIntegralInRange(0, 3);
  for (int t = 0; t < n_tasks; ++t) {
    TaskRecord r;
    r.key = small_text(in, 16);
    r.kind = in.ConsumeBool() ? "generate" : small_text(in, 15);
    r.method = small_text(in, 12);
    r.seed = in.ConsumeIntegral<long long>();
    r.ratio = value(in);
    r.status = in.ConsumeBool() ? "done" : "failed";
    r.seconds = value(in);
    r.message = small_text(in, 40);
    TaskOutput out;
    if (in.ConsumeBool()) {
      CfMetricRow m;
      m.key = r.key;
      m.method = r.method;
      m.validity = value(in);
      m.parse_rate = value(in);
      out.cf.push_back(m);
    }
    if (in.ConsumeBool()) {
      ClfMetricRow m;
      m.key = r.key;
      m.f1 = value(in);
      out.clf.push_back(m);
    }
    if (in.ConsumeBool()) out.train.push_back(TrainRow{r.key, r.kind, in.ConsumeIntegral<long long>(), value(in), value(in)});
    if (in.ConsumeBool()) {
      UsageRow u;
      u.key = r.key;
      u.requests = in.ConsumeIntegral<long long>();
      u.cost_usd = value(in);
      out.usage.push_back(u);
    }
    if (in.ConsumeBool()) out.counterfactuals.push_back(cf_arrays(in));
    try {
      writer.append(r, out);
    } catch (const sensecf::Error&) {
      // A value the writer refuses (too long for its column): the row is not written.
    }
  }
}

// ---- edits with the HDF5 C API: what a damaged or foreign file holds ------------

// Any of these failing (HDF5 refusing an edit) just leaves the file as it is.
void delete_attribute(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
}

// A scalar fixed-length string, as the writer makes them.
void write_text_attribute(hid_t obj, const char* name, const std::string& text) {
  delete_attribute(obj, name);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, text.size() + 1);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (attr >= 0) {
    H5Awrite(attr, type, text.c_str());
    H5Aclose(attr);
  }
  H5Sclose(space);
  H5Tclose(type);
}

void write_attribute(FuzzedDataProvider& in, hid_t obj, const char* name, const std::string& text) {
  delete_attribute(obj, name);
  const int kind = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange(1, 5);  // half of them as the writer's
  hid_t type = -1, space = -1;
  if (kind <= 1) {  // fixed-length text, scalar (as the writer) or [k]
    type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, text.size() + 1);
    const hsize_t k = kind == 0 ? 1 : in.ConsumeIntegralInRange<hsize_t>(0, 3);
    space = kind == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &k, nullptr);
    const hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) {
      std::string buf((k ? k : 1) * (text.size() + 1), '\0');
      for (hsize_t i = 0; i < k; ++i) buf.replace(i * (text.size() + 1), text.size(), text);
      if (k) H5Awrite(attr, type, buf.data());
      H5Aclose(attr);
    }
  } else if (kind <= 3) {  // variable-length text (h5py's default), scalar or [k]
    type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    const hsize_t k = kind == 2 ? 1 : in.ConsumeIntegralInRange<hsize_t>(0, 3);
    space = kind == 2 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &k, nullptr);
    const hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) {
      std::vector<const char*> ptrs(k ? k : 1, text.c_str());
      if (in.ConsumeBool()) H5Awrite(attr, type, ptrs.data());  // else: never written (null)
      H5Aclose(attr);
    }
  } else {  // a number, as h5py writes attrs["seed"] = 1
    type = H5Tcopy(kind == 4 ? H5T_NATIVE_LLONG : H5T_NATIVE_DOUBLE);
    space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) {
      const long long i = in.ConsumeIntegral<long long>();
      const double x = value(in);
      H5Awrite(attr, type, kind == 4 ? static_cast<const void*>(&i) : static_cast<const void*>(&x));
      H5Aclose(attr);
    }
  }
  if (space >= 0) H5Sclose(space);
  if (type >= 0) H5Tclose(type);
}

void unlink(hid_t file, const std::string& path) {
  if (H5Lexists(file, path.c_str(), H5P_DEFAULT) > 0) H5Ldelete(file, path.c_str(), H5P_DEFAULT);
}

hid_t intermediate_groups() {
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  return lcpl;
}

// A dataset at `path` of a fuzzed type and shape; written only when small.
void write_dataset(FuzzedDataProvider& in, hid_t file, const std::string& path, std::size_t n, std::size_t d) {
  unlink(file, path);
  const int rank = in.ConsumeIntegralInRange(0, 3);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  bool huge = false;
  for (int k = 0; k < rank; ++k) {
    switch (in.ConsumeIntegralInRange(0, 9)) {
      case 0: dims[k] = hsize_t{1} << in.ConsumeIntegralInRange(31, 62), huge = true; break;  // never written
      case 1: dims[k] = in.ConsumeIntegralInRange<hsize_t>(0, 6); break;
      case 2: case 3: dims[k] = d; break;
      default: dims[k] = n; break;
    }
  }
  hid_t type = -1;
  const int kind = in.ConsumeIntegralInRange(0, 6);
  switch (kind) {
    case 0: type = H5Tcopy(H5T_IEEE_F64LE); break;
    case 1: type = H5Tcopy(H5T_STD_I64LE); break;
    case 2: type = H5Tcopy(H5T_STD_I32BE); break;
    case 3: type = H5Tcopy(H5T_IEEE_F32LE); break;
    case 4: type = H5Tcopy(H5T_STD_U8LE); break;
    case 5: type = H5Tcopy(H5T_C_S1), H5Tset_size(type, H5T_VARIABLE), H5Tset_cset(type, H5T_CSET_UTF8); break;
    default: type = H5Tcopy(H5T_C_S1), H5Tset_size(type, in.ConsumeIntegralInRange<std::size_t>(1, 9)); break;
  }
  const hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims.data(), nullptr);
  const hid_t lcpl = intermediate_groups();
  const hid_t dset = space >= 0 ? H5Dcreate2(file, path.c_str(), type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT) : -1;
  std::size_t count = 1;
  for (auto x : dims) count *= static_cast<std::size_t>(x);
  if (dset >= 0 && !huge && count > 0 && count <= 64 && in.ConsumeBool()) {
    if (kind == 5) {
      std::vector<std::string> text(count);
      std::vector<const char*> ptrs;
      for (auto& t : text) t = small_text(in, 12), ptrs.push_back(t.c_str());
      H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data());
    } else if (kind == 6) {
      std::string bytes = in.ConsumeBytesAsString(count * H5Tget_size(type));
      bytes.resize(count * H5Tget_size(type));
      H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
    } else {
      std::vector<double> v(count);
      for (auto& x : v) x = kind == 0 || kind == 3 ? value(in) : in.ConsumeIntegralInRange(-3, 300);
      H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    }
  }
  if (dset >= 0) H5Dclose(dset);
  H5Pclose(lcpl);
  if (space >= 0) H5Sclose(space);
  H5Tclose(type);
}

// A table replaced by a compound dataset with fuzzed columns, types and rows.
void write_table(FuzzedDataProvider& in, hid_t file, const std::string& path) {
  unlink(file, path);
  struct Member {
    std::string name;
    hid_t type;
    std::size_t offset;
  };
  std::vector<Member> members;
  std::size_t size = 0;
  const int n_columns = in.ConsumeIntegralInRange(0, 6);
  for (int c = 0; c < n_columns; ++c) {
    Member m{pick(in, kColumns), -1, size};
    for (const auto& other : members)
      if (other.name == m.name) m.name += "_";
    switch (in.ConsumeIntegralInRange(0, 5)) {
      case 0: m.type = H5Tcopy(H5T_NATIVE_INT64); break;
      case 1: m.type = H5Tcopy(H5T_NATIVE_DOUBLE); break;
      case 2: m.type = H5Tcopy(H5T_NATIVE_INT32); break;
      case 3: m.type = H5Tcopy(H5T_C_S1), H5Tset_size(m.type, H5T_VARIABLE); break;
      case 4: {  // an array member: a type the reader does not support
        const hsize_t two = 2;
        m.type = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &two);
        break;
      }
      default: m.type = H5Tcopy(H5T_C_S1), H5Tset_size(m.type, in.ConsumeIntegralInRange<std::size_t>(1, 40)); break;
    }
    size += H5Tget_size(m.type);
    members.push_back(m);
  }
  if (size > 0) {
    const hid_t type = H5Tcreate(H5T_COMPOUND, size);
    for (const auto& m : members) H5Tinsert(type, m.name.c_str(), m.offset, m.type);
    const hsize_t rows = in.ConsumeIntegralInRange<hsize_t>(0, 4);
    const hid_t space = H5Screate_simple(1, &rows, nullptr);
    const hid_t lcpl = intermediate_groups();
    const hid_t dset = H5Dcreate2(file, path.c_str(), type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (dset >= 0 && rows > 0) {
      // Raw bytes for every member except variable-length strings (pointers).
      std::string bytes = in.ConsumeBytesAsString(rows * size);
      bytes.resize(rows * size);
      for (const auto& m : members) {
        if (H5Tis_variable_str(m.type) > 0)
          for (hsize_t r = 0; r < rows; ++r) {
            static const char* const kText = "text";
            std::memcpy(&bytes[r * size + m.offset], &kText, sizeof kText);
          }
      }
      H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
    }
    if (dset >= 0) H5Dclose(dset);
    H5Pclose(lcpl);
    H5Sclose(space);
    H5Tclose(type);
  }
  for (const auto& m : members) H5Tclose(m.type);
}

void edit(FuzzedDataProvider& in, hid_t file) {
  const int n_edits = in.ConsumeIntegralInRange(0, 8);
  for (int e = 0; e < n_edits && in.remaining_bytes() > 0; ++e) {
    switch (in.ConsumeIntegralInRange(0, 9)) {
      case 0: delete_attribute(file, pick(in, kRootAttributes)); break;
      case 1: {
        const char* name = pick(in, kRootAttributes);
        const std::string text = in.ConsumeBool() ? "1" : small_text(in);
        write_attribute(in, file, name, text);
        break;
      }
      case 2: unlink(file, pick(in, kTables)); break;
      case 3: write_table(in, file, pick(in, kTables)); break;
      case 4: write_dataset(in, file, pick(in, kTables), 3, 2); break;
      case 5: case 6: case 7: {  // one /counterfactuals/<key> group, made or changed
        const std::string base = std::string("/counterfactuals/") + (in.ConsumeBool() ? "k0" : "k1");
        const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 4), d = in.ConsumeIntegralInRange<std::size_t>(0, 3);
        if (H5Lexists(file, "/counterfactuals", H5P_DEFAULT) <= 0) {
          const hid_t g = H5Gcreate2(file, "/counterfactuals", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
          if (g >= 0) H5Gclose(g);
        }
        if (H5Lexists(file, base.c_str(), H5P_DEFAULT) <= 0) {
          // A new group starts with the writer's attributes, so that the
          // reader gets as far as its arrays.
          const hid_t g = H5Gcreate2(file, base.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
          if (g >= 0) H5Gclose(g);
          std::string names = "[";
          for (std::size_t j = 0; j < d; ++j) names += (j ? ",\"f" : "\"f") + std::to_string(j) + "\"";
          const std::pair<const char*, std::string> attributes[] = {
              {"features", names + "]"}, {"method", "nice"}, {"scenario", "full"}, {"purpose", "table3"}, {"seed", "1"}};
          const hid_t group = H5Oopen(file, base.c_str(), H5P_DEFAULT);
          if (group >= 0) {
            for (const auto& [name, text] : attributes) write_text_attribute(group, name, text);
            H5Oclose(group);
          }
        }
        const int n_arrays = in.ConsumeIntegralInRange(0, 10);
        for (int a = 0; a < n_arrays; ++a) {
          const char* name = pick(in, kArrays);
          if (in.ConsumeIntegralInRange(0, 4) == 0) unlink(file, base + "/" + name);
          else write_dataset(in, file, base + "/" + name, n, d);
        }
        const hid_t obj = H5Oopen(file, base.c_str(), H5P_DEFAULT);
        if (obj < 0) break;
        const int n_attributes = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange(1, 6);
        for (int a = 0; a < n_attributes; ++a) {
          const char* name = pick(in, kGroupAttributes);
          if (in.ConsumeIntegralInRange(0, 4) == 0) {
            delete_attribute(obj, name);
          } else {
            std::string text = std::string(name) == "features" ? features_json(in, d)
                               : std::string(name) == "seed" ? (in.ConsumeBool() ? std::to_string(in.ConsumeIntegral<long long>()) : small_text(in))
                                                             : small_text(in);
            write_attribute(in, obj, name, text);
          }
        }
        H5Oclose(obj);
        break;
      }
      case 8: unlink(file, "/counterfactuals"); break;
      default: write_dataset(in, file, "/counterfactuals", 2, 2); break;  // not a group
    }
  }
}

void check(const Results& r) {
  if (r.format_version != kResultsFormatVersion) std::abort();
  for (const CfArrays& c : r.counterfactuals) {
    const std::size_t n = c.n, d = c.d;
    if (d != c.features.size()) std::abort();
    if (c.factual.size() != n * d || c.counterfactual.size() != n * d) std::abort();
    if (c.query_row.size() != n || c.target.size() != n || c.probability.size() != n || c.valid.size() != n ||
        c.found.size() != n || c.answer.size() != n)
      std::abort();
    if (!c.patient.empty() && c.patient.size() != n) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string& path = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // the edits below may fail; HDF5 would print each
    set_file_locking(FileLocking::kOff);
    return temp_file("h5");
  }();
  FuzzedDataProvider in(data, size);
  try {
    Provenance p;
    p.config = small_text(in, 60);
    p.hosts = small_text(in);
    p.mpi_size = in.ConsumeIntegral<long long>();
    ResultsWriter writer = ResultsWriter::create(path, p);
    write_rows(in, writer);
    writer.flush();
  } catch (const sensecf::Error&) {
    std::abort();  // the writer makes every file the edits start from
  }
  {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    if (file < 0) std::abort();
    edit(in, file);
    H5Fclose(file);
  }
  try {
    check(read_results(path));
  } catch (const sensecf::Error& e) {
    if (std::getenv("SENSECF_FUZZ_VERBOSE")) std::fprintf(stderr, "refused: %s\n", e.what());
    // To find an input for a given refusal (a reproducer for the corpus):
    // SENSECF_FUZZ_ABORT_ON="text of the message" makes it a crash.
    const char* wanted = std::getenv("SENSECF_FUZZ_ABORT_ON");
    if (wanted && std::strstr(e.what(), wanted)) std::abort();
  }
  return 0;
}
