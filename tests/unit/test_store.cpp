// HDF5 store: attributes and compound tables round-trip through our reader and
// through an independent one (h5py, with the system Python).
#include <gtest/gtest.h>

#include "sensecf/core/error.h"
#include "sensecf/store/h5file.h"
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
  EXPECT_THROW_WITH(Table::create(f, "/metrics/clf", columns()), Error, "HDF5 call failed");
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

}  // namespace
}  // namespace sensecf::store
