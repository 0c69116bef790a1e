// HDF5 store: attributes and compound tables round-trip through our reader and
// through an independent one (h5py, with the system Python); the results file's
// CF columns (validity over all queries, validity_returned, parse_rate, the LLM
// answer text) through HDF5 and through the journal's JSON.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include <hdf5.h>

#include "sensecf/core/error.h"
#include "sensecf/store/h5file.h"
#include "sensecf/store/results.h"
#include "test_util.h"

namespace sensecf::store {
namespace {

std::vector<Column> columns() {
  return {{"key", ColumnType::kString, 17}, {"seed", ColumnType::kInt64}, {"f1", ColumnType::kFloat64}};
}

void write_fixture(const std::string& path) {
  H5File f = H5File::create(path);
  f.set_attribute("format_version", "1");
  f.set_attribute("config", "[data]\nlabel = high_stress\n");
  Table t = Table::create(f, "/metrics/clf", columns(), 4);
  t.append({{std::string("0123456789abcdef"), 1LL, 0.5}, {std::string("k2"), -7LL, 0.25}});
  t.append({{std::string("k3"), 3LL, 1e-300}});
  f.flush();
}

TEST(Store, AttributesAndTableRoundTrip) {
  test::TempDir dir;
  const auto path = dir.file("r.h5");
  write_fixture(path);
  H5File f = H5File::open(path, /*writable=*/false);
  EXPECT_EQ(f.attribute("format_version"), "1");
  EXPECT_EQ(f.attribute("config"), "[data]\nlabel = high_stress\n");
  EXPECT_TRUE(f.exists("/metrics/clf"));
  EXPECT_FALSE(f.exists("/metrics/cf"));
  EXPECT_FALSE(f.exists("/nothing/here"));
  const Table t = Table::open(f, "/metrics/clf");
  ASSERT_EQ(t.size(), 3u);
  const auto rows = t.read();
  EXPECT_EQ(std::get<std::string>(rows[0][0]), "0123456789abcdef");
  EXPECT_EQ(std::get<long long>(rows[1][1]), -7);
  EXPECT_EQ(std::get<double>(rows[2][2]), 1e-300);
  EXPECT_EQ(t.columns()[0].length, 17u);
}

TEST(Store, AppendAfterReopen) {
  test::TempDir dir;
  const auto path = dir.file("r.h5");
  write_fixture(path);
  {
    H5File f = H5File::open(path, true);
    Table t = Table::open(f, "/metrics/clf");
    t.append({{std::string("k4"), 4LL, 4.0}});
  }
  H5File f = H5File::open(path, false);
  EXPECT_EQ(Table::open(f, "/metrics/clf").size(), 4u);
}

TEST(Store, ErrorsAreClear) {
  test::TempDir dir;
  const auto path = dir.file("r.h5");
  write_fixture(path);
  H5File f = H5File::open(path, true);
  Table t = Table::open(f, "/metrics/clf");
  EXPECT_THROW_WITH(t.append({{std::string(20, 'x'), 1LL, 1.0}}), Error, "does not fit column 'key'");
  EXPECT_THROW_WITH(t.append({{1LL, 1LL, 1.0}}), Error, "column 'key' expects text");
  EXPECT_THROW_WITH(t.append({{std::string("a")}}), Error, "row has 1 values for 3 columns");
  EXPECT_THROW_WITH(Table::open(f, "/nope"), Error, "has no table '/nope'");
  EXPECT_THROW_WITH(f.attribute("nope"), Error, "has no attribute 'nope'");
  const auto not_h5 = dir.write("x.h5", "not hdf5");
  EXPECT_THROW_WITH(H5File::open(not_h5, false), Error, "not an HDF5 file");
  // An HDF5 call that fails reports the call through SENSECF_H5_CHECK.
  EXPECT_THROW_WITH(Table::create(f, "/metrics/clf", columns()), Error, "HDF5 error");
}

TEST(Store, IndependentReaderH5py) {
  test::TempDir dir;
  const auto path = dir.file("r.h5");
  write_fixture(path);
  const std::string script = std::string(SENSECF_TEST_SOURCE_DIR) + "/python/check_h5_fixture.py";
  const auto r = test::run_command("/usr/bin/python3 " + script + " " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("h5py read 3 rows"), std::string::npos) << r.output;
}

// One LLM generate task (3 queries: a parsed answer, an answer that did not
// parse, one with a multi-line UTF-8 answer) and a baseline row without answers.
TaskOutput llm_output() {
  TaskOutput out;
  CfMetricRow llm;
  llm.key = "00000000000000aa";
  llm.method = "llm:tiny:zero-shot+constrained";
  llm.scenario = "full";
  llm.purpose = "table3";
  llm.seed = 3;
  llm.n_queries = 3;
  llm.n_cfs = 2;
  llm.validity = 1.0 / 3;
  llm.coverage = 2.0 / 3;
  llm.validity_returned = 0.5;
  llm.parse_rate = 0.75;
  out.cf.push_back(llm);
  CfMetricRow baseline = llm;
  baseline.method = "nice";
  baseline.parse_rate = std::numeric_limits<double>::quiet_NaN();
  out.cf.push_back(baseline);
  CfArrays a;
  a.key = llm.key;
  a.method = llm.method;
  a.scenario = "full";
  a.purpose = "table3";
  a.seed = 3;
  a.features = {"deep_pct", "age"};
  a.n = 3;
  a.d = 2;
  a.query_row = {10, 11, 12};
  a.factual = {12.5, 80, 20, 60, 30, 70};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  a.counterfactual = {18, 80, nan, nan, 35, 70};
  a.target = {0, 0, 1};
  a.probability = {0.2, nan, 0.4};
  a.valid = {1, 0, 0};
  a.found = {1, 0, 1};
  a.answer = {"deep_pct: 18.0", "", "deep_pct = 35 %\nage: 70 — unchanged ✓"};
  out.counterfactuals.push_back(a);
  return out;
}

void expect_same_cf_rows(const std::vector<CfMetricRow>& got, const std::vector<CfMetricRow>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].method, want[i].method);
    EXPECT_EQ(got[i].validity, want[i].validity);
    EXPECT_EQ(got[i].coverage, want[i].coverage);
    EXPECT_EQ(got[i].validity_returned, want[i].validity_returned);
    if (std::isnan(want[i].parse_rate)) {
      EXPECT_TRUE(std::isnan(got[i].parse_rate)) << got[i].parse_rate;
    } else {
      EXPECT_EQ(got[i].parse_rate, want[i].parse_rate);
    }
  }
}

TEST(Store, ResultsKeepValidityColumnsAndAnswers) {
  test::TempDir dir;
  const auto path = dir.file("results.h5");
  const TaskOutput out = llm_output();
  {
    auto w = ResultsWriter::create(path, {});
    TaskRecord t;
    t.key = "00000000000000aa";
    t.kind = "generate";
    t.status = "done";
    w.append(t, out);
    w.flush();
  }
  const Results r = read_results(path);
  expect_same_cf_rows(r.cf, out.cf);
  ASSERT_EQ(r.counterfactuals.size(), 1u);
  EXPECT_EQ(r.counterfactuals[0].answer, out.counterfactuals[0].answer);

  // The journal's JSON is exact as well.
  const TaskOutput back = task_output_from_json(nlohmann::json::parse(to_json(out).dump()));
  expect_same_cf_rows(back.cf, out.cf);
  ASSERT_EQ(back.counterfactuals.size(), 1u);
  EXPECT_EQ(back.counterfactuals[0].answer, out.counterfactuals[0].answer);
  // JSON from before the answer column: one empty answer per query.
  auto old = to_json(out);
  old["counterfactuals"][0].erase("answer");
  EXPECT_EQ(task_output_from_json(old).counterfactuals[0].answer, std::vector<std::string>(3));
  auto bad = to_json(out);
  bad["counterfactuals"][0]["answer"] = {"only one"};
  EXPECT_THROW_WITH(task_output_from_json(bad), Error, "sizes do not match");

  // h5py sees the new columns and the answers.
  const std::string script = std::string(SENSECF_TEST_SOURCE_DIR) + "/python/check_h5_fixture.py";
  const auto run = test::run_command("/usr/bin/python3 " + script + " --results " + path);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("h5py read 3 answers"), std::string::npos) << run.output;
}

// Results files carry checksums: Fletcher-32 on every dataset chunk, the 1.8
// format's on object headers. A flipped bit fails to read, saying why, instead
// of changing a reported value.
TEST(Store, DamagedResultsFilesFailToReadInsteadOfReadingWrong) {
  test::TempDir dir;
  const auto path = dir.file("results.h5");
  {
    auto w = ResultsWriter::create(path, {});
    TaskRecord t;
    t.key = "00000000000000aa";
    t.kind = "generate";
    t.status = "done";
    w.append(t, llm_output());
    w.flush();
  }
  // Where /metrics/cf's first chunk and its object header are in the file.
  haddr_t chunk = HADDR_UNDEF, header = HADDR_UNDEF;
  {
    const H5File f = H5File::open(path, /*writable=*/false);
    const hid_t d = H5Dopen2(f.id(), "/metrics/cf", H5P_DEFAULT);
    ASSERT_GE(d, 0);
    hsize_t offset[1] = {0}, size = 0;
    unsigned filter_mask = 0;
    const hid_t space = H5Dget_space(d);
    ASSERT_GE(H5Dget_chunk_info(d, space, 0, offset, &filter_mask, &chunk, &size), 0);
    H5Sclose(space);
    ASSERT_GT(size, 16u);
    H5O_info_t info;
    ASSERT_GE(H5Oget_info2(d, &info, H5O_INFO_BASIC), 0);
    header = info.addr;
    H5Dclose(d);
  }
  const std::string good = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  auto flip_and_read = [&](haddr_t at) {
    std::string bytes = good;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    return read_results(path);
  };
  EXPECT_THROW_WITH(flip_and_read(chunk + 8), Error, "data error detected by Fletcher32 checksum");
  EXPECT_THROW_WITH(flip_and_read(header + 12), Error, "checksum");
  try {
    flip_and_read(chunk + 8);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'" + path + "': HDF5 error: "), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("damaged"), std::string::npos) << e.hint();
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << good;
  EXPECT_EQ(read_results(path).cf.size(), llm_output().cf.size());
}

}  // namespace
}  // namespace sensecf::store

namespace sensecf::store {
namespace {

// /metrics/usage (what a remote LLM's generate task spent) round-trips through
// HDF5 and the journal's JSON; a file written before the table existed opens
// for appending (the table is added) and reads as empty.
TEST(Store, UsageRowsRoundTripAndOldFilesGainTheTable) {
  test::TempDir dir;
  const auto path = dir.file("results.h5");
  TaskOutput out;
  UsageRow u;
  u.key = "00000000000000bb";
  u.method = "llm:gpt-4o:few-shot";
  u.scenario = "full";
  u.purpose = "table3";
  u.seed = 3;
  u.requests = 103;
  u.answers = 100;
  u.cache_hits = 0;
  u.retries = 3;
  u.failures = 1;
  u.prompt_tokens = 61234;
  u.completion_tokens = 9012;
  u.cost_usd = 0.243205;
  u.seconds = 12.5;
  out.usage.push_back(u);
  TaskRecord t;
  t.key = u.key;
  t.kind = "generate";
  t.status = "done";
  {
    auto w = ResultsWriter::create(path, {});
    w.append(t, out);
    w.flush();
  }
  auto same = [&u](const UsageRow& r) {
    EXPECT_EQ(r.key, u.key);
    EXPECT_EQ(r.method, u.method);
    EXPECT_EQ(r.purpose, u.purpose);
    EXPECT_EQ(r.seed, u.seed);
    EXPECT_EQ(r.requests, u.requests);
    EXPECT_EQ(r.answers, u.answers);
    EXPECT_EQ(r.retries, u.retries);
    EXPECT_EQ(r.failures, u.failures);
    EXPECT_EQ(r.prompt_tokens, u.prompt_tokens);
    EXPECT_EQ(r.completion_tokens, u.completion_tokens);
    EXPECT_EQ(r.cost_usd, u.cost_usd);
    EXPECT_EQ(r.seconds, u.seconds);
  };
  const Results r = read_results(path);
  ASSERT_EQ(r.usage.size(), 1u);
  same(r.usage[0]);
  const TaskOutput back = task_output_from_json(nlohmann::json::parse(to_json(out).dump()));
  ASSERT_EQ(back.usage.size(), 1u);
  same(back.usage[0]);

  // An older file: the same, without /metrics/usage.
  {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    ASSERT_GE(H5Ldelete(f, "/metrics/usage", H5P_DEFAULT), 0);
    H5Fclose(f);
  }
  EXPECT_TRUE(read_results(path).usage.empty());
  {
    auto w = ResultsWriter::open(path);
    t.key = "00000000000000cc";
    w.append(t, out);
    w.flush();
  }
  const Results again = read_results(path);
  ASSERT_EQ(again.usage.size(), 1u);
  EXPECT_EQ(again.tasks.size(), 2u);
}

}  // namespace
}  // namespace sensecf::store

namespace sensecf::store {
namespace {

// `sensecf export` (the binary) writes tables that Python's own csv and json
// modules read back: strings decoded, NaN as an empty field / null, an LLM
// answer with a line break, quotes and a comma intact, CFs in long form.
TEST(Store, ExportedTablesReadBackInPython) {
  test::TempDir dir;
  const auto path = dir.file("results.h5");
  TaskOutput out = llm_output();
  out.counterfactuals[0].answer[0] = "deep_pct: 18.0, \"as asked\"";
  {
    auto w = ResultsWriter::create(path, {});
    TaskRecord t;
    t.key = "00000000000000aa";
    t.kind = "generate";
    t.status = "done";
    w.append(t, out);
    w.flush();
  }
  const std::string bin = SENSECF_BIN_PATH;
  for (const char* args : {"--table metrics/cf --format csv --out cf.csv", "--table metrics/cf --format json --out cf.json",
                           "--table counterfactuals --format csv --out cfs.csv", "--table tasks --format json --out tasks.json"}) {
    const auto run = test::run_command("cd " + dir.file("") + " && " + bin + " export --results " + path + " " + args +
                                       " --log.level warn 2>&1");
    ASSERT_EQ(run.exit_code, 0) << args << "\n" << run.output;
  }
  const std::string script = R"(
import csv, json, math, sys
d = sys.argv[1]
cf = list(csv.DictReader(open(d + "/cf.csv", newline="")))
assert [r["method"] for r in cf] == ["llm:tiny:zero-shot+constrained", "nice"], cf
assert abs(float(cf[0]["validity"]) - 1 / 3) < 1e-15 and cf[0]["parse_rate"] == "0.75", cf[0]
assert cf[1]["parse_rate"] == "", cf[1]
js = json.load(open(d + "/cf.json"))
assert js[1]["parse_rate"] is None and js[0]["seed"] == 3 and js[0]["factual_class"] == -1, js
assert list(js[0])[:3] == ["key", "method", "scenario"], list(js[0])
rows = list(csv.DictReader(open(d + "/cfs.csv", newline="")))
assert len(rows) == 3, rows
assert rows[0]["answer"] == 'deep_pct: 18.0, "as asked"', rows[0]["answer"]
assert rows[2]["answer"] == "deep_pct = 35 %\nage: 70 \u2014 unchanged \u2713", rows[2]["answer"]
assert rows[1]["cf_deep_pct"] == "" and rows[1]["found"] == "0" and rows[1]["probability"] == "", rows[1]
assert rows[0]["factual_deep_pct"] == "12.5" and rows[0]["cf_deep_pct"] == "18" and rows[2]["query_row"] == "12", rows
tasks = json.load(open(d + "/tasks.json"))
assert tasks[0]["kind"] == "generate" and tasks[0]["status"] == "done", tasks
print("python read", len(cf), "metric rows,", len(rows), "CF rows")
)";
  std::ofstream(dir.file("check.py")) << script;
  const auto check = test::run_command("/usr/bin/python3 " + dir.file("check.py") + " " + dir.file("") + " 2>&1");
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("python read 2 metric rows, 3 CF rows"), std::string::npos) << check.output;

  // An empty table (no remote LLM ran): the header alone.
  const auto empty = test::run_command(bin + " export --results " + path + " --table metrics/usage --log.level warn");
  EXPECT_EQ(empty.exit_code, 0);
  EXPECT_EQ(empty.output.rfind("key,method,scenario,purpose,seed,requests,", 0), 0u) << empty.output;
  EXPECT_EQ(std::count(empty.output.begin(), empty.output.end(), '\n'), 1) << empty.output;
  const auto none = test::run_command(bin + " export --results " + dir.file("none.h5") + " 2>&1");
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.output.find("none.h5"), std::string::npos) << none.output;
}

}  // namespace
}  // namespace sensecf::store
