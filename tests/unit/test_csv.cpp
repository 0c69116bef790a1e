// CSV reading: schema, categorical encoding, and every malformed-input error
// names file, line and column.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"
#include "sensecf/data/csv.h"
#include "test_util.h"

namespace sensecf::data {
namespace {

DataOptions options_for(const std::string& path) {
  DataOptions o;
  o.path = path;
  o.label = "y";
  o.group = "pid";
  o.categorical = {"sex"};
  o.immutable = {"age", "sex"};
  return o;
}

const char* kGood =
    "pid,steps,age,sex,y\n"
    "p1,100.5,61,female,0\n"
    "p1,20,61,female,1\n"
    "p2,\"3.5\",70,male,1\n"
    "p3,7,45,female,0\r\n";

TEST(Csv, ReadsSchemaValuesAndCategories) {
  test::TempDir dir;
  const Dataset d = read_csv(options_for(dir.write("a.csv", kGood)));
  ASSERT_EQ(d.size(), 4u);
  ASSERT_EQ(d.schema.size(), 3u);
  EXPECT_EQ(d.schema.names(), (std::vector<std::string>{"steps", "age", "sex"}));
  EXPECT_FALSE(d.schema.features[0].immutable);
  EXPECT_TRUE(d.schema.features[1].immutable);
  EXPECT_TRUE(d.schema.features[2].is_categorical());
  EXPECT_EQ(d.schema.features[2].categories, (std::vector<std::string>{"female", "male"}));
  EXPECT_DOUBLE_EQ(d.x.at(2, 0), 3.5);
  EXPECT_DOUBLE_EQ(d.x.at(2, 2), 1.0);  // male
  EXPECT_EQ(d.y, (std::vector<int>{0, 1, 1, 0}));
  EXPECT_EQ(d.group, (std::vector<std::string>{"p1", "p1", "p2", "p3"}));
  EXPECT_DOUBLE_EQ(d.schema.features[0].lower, 3.5);
  EXPECT_DOUBLE_EQ(d.schema.features[0].upper, 100.5);
}

// The one CSV field writer every CSV of sensecf uses (data, CFs, report, export).
TEST(Csv, FieldsAreQuotedOnlyWhenTheyMustBe) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("cr\r"), "\"cr\r\"");
  EXPECT_EQ(csv_field(" padded "), " padded ");
  EXPECT_EQ(csv_field(" padded ", /*keep_padding=*/true), "\" padded \"");
  EXPECT_EQ(csv_field(" ", true), "\" \"");
  EXPECT_EQ(csv_field("", true), "");
}

TEST(Csv, WriteThenReadRoundTrips) {
  test::TempDir dir;
  const Dataset a = read_csv(options_for(dir.write("a.csv", kGood)));
  write_csv(a, dir.file("b.csv"));
  const Dataset b = read_csv(options_for(dir.file("b.csv")));
  EXPECT_EQ(a.x.values, b.x.values);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.group, b.group);
  EXPECT_EQ(a.schema.features[2].categories, b.schema.features[2].categories);
}

// What schema.json must hold for a counterfactual search: finite, ordered
// bounds, codes that name a category, distinct names.
TEST(Schema, FromJsonChecksBoundsCodesAndNames) {
  const auto good = R"({"label": "y", "group": "pid", "features": [
      {"name": "a", "kind": "continuous", "immutable": false, "lower": 1.0, "upper": 2.0},
      {"name": "c", "kind": "categorical", "immutable": true, "categories": ["x", "y"], "allowed": [0, 1]}]})";
  const auto schema = Schema::from_json(nlohmann::json::parse(good));
  EXPECT_EQ(schema.size(), 2u);
  EXPECT_EQ(Schema::from_json(schema.to_json()).to_json(), schema.to_json());
  auto with = [&](const char* path, nlohmann::json value) {
    auto j = nlohmann::json::parse(good);
    j[nlohmann::json::json_pointer(path)] = value;
    return j;
  };
  EXPECT_THROW_WITH(Schema::from_json(with("/features/0/lower", 3.0)), Error,
                    "feature 'a' has bounds [3, 2]: they must be finite with lower <= upper");
  EXPECT_THROW_WITH(Schema::from_json(with("/features/0/upper", nullptr)), Error, "schema JSON is malformed");
  EXPECT_THROW_WITH(Schema::from_json(with("/features/1/allowed", {0, 2})), Error,
                    "categorical feature 'c' allows code 2, but its 2 categories have codes 0 to 1");
  EXPECT_THROW_WITH(Schema::from_json(with("/features/1/categories", nlohmann::json::array())), Error,
                    "has no categories");
  EXPECT_THROW_WITH(Schema::from_json(with("/features/1/name", "a")), Error, "feature 'a' is listed twice");
}

struct BadCase {
  const char* name;
  const char* text;
  const char* expected;  // substring of the error, after the file name
};

class CsvErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(CsvErrors, NameWhatAndWhere) {
  test::TempDir dir;
  const auto path = dir.write("bad.csv", GetParam().text);
  try {
    read_csv(options_for(path));
    FAIL() << "no error for " << GetParam().name;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(GetParam().expected), std::string::npos) << "got: " << msg;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, CsvErrors,
    ::testing::Values(
        BadCase{"ragged", "pid,steps,age,sex,y\np1,1,61,female,0\np2,2,61,female\n", ":3: expected 5 fields"},
        BadCase{"non_numeric", "pid,steps,age,sex,y\np1,1,61,female,0\np2,abc,62,male,1\n",
                ":3:4: column 'steps' expects a number, found 'abc'"},
        BadCase{"empty_cell", "pid,steps,age,sex,y\np1,,61,female,0\np2,2,62,male,1\n",
                ":2:4: feature column 'steps' is empty or NaN"},
        BadCase{"nan_cell", "pid,steps,age,sex,y\np1,NaN,61,female,0\np2,2,62,male,1\n", ":2:4:"},
        BadCase{"no_label", "pid,steps,age,sex,target\np1,1,61,female,0\n", "no label column 'y'"},
        BadCase{"label_not_binary", "pid,steps,age,sex,y\np1,1,61,female,0\np2,2,62,male,2\n",
                ":3:14: label 'y' must be 0 or 1, found '2'"},
        BadCase{"label_one_class", "pid,steps,age,sex,y\np1,1,61,female,1\np2,2,62,male,1\n", "always 1"},
        BadCase{"constant", "pid,steps,age,sex,y\np1,1,61,female,0\np2,1,62,male,1\n",
                "column 'steps' is constant"},
        BadCase{"duplicate_header", "pid,steps,age,steps,sex,y\n", ":1:15: duplicate column 'steps'"},
        BadCase{"unterminated_quote", "pid,steps,age,sex,y\np1,\"1,61,female,0\n", ":2:4: unterminated"},
        BadCase{"empty_file", "", "the file is empty"},
        BadCase{"header_only", "pid,steps,age,sex,y\n", "no data rows"},
        BadCase{"latin1_category", "pid,steps,age,sex,y\np1,1,61,f\xE9male,0\n", ":2:10: byte 0xE9 is not UTF-8 text"},
        BadCase{"latin1_header", "pid,st\xE9ps,age,sex,y\np1,1,61,female,0\n", ":1:7: byte 0xE9 is not UTF-8"}),
    [](const auto& test_info) { return std::string(test_info.param.name); });

// A user's own CSV with only --label: the synthetic cohort's default columns
// that the file lacks are not required, text columns become categorical, no
// feature is immutable unless named, and without the default group column
// every row is its own patient. What a user names must exist.
TEST(Csv, AUserCsvNeedsOnlyTheLabel) {
  test::TempDir dir;
  const auto path = dir.write("mine.csv",
                              "age,sex,bmi,smoker,y\n"
                              "50,f,22.5,no,0\n61,m,30.1,yes,1\n45,f,27.0,no,1\n70,m,24.2,yes,0\n");
  DataOptions d;
  Options options("demo", "demo");
  declare_options(options, d);
  ASSERT_TRUE(options.parse({"--data", path, "--label", "y"}));
  const Dataset data = read_csv(d);
  EXPECT_EQ(data.schema.names(), (std::vector<std::string>{"age", "sex", "bmi", "smoker"}));
  EXPECT_FALSE(data.schema.features[0].is_categorical());
  EXPECT_TRUE(data.schema.features[1].is_categorical());
  EXPECT_EQ(data.schema.features[1].categories, (std::vector<std::string>{"f", "m"}));
  EXPECT_TRUE(data.schema.features[3].is_categorical());
  for (const auto& f : data.schema.features) EXPECT_FALSE(f.immutable) << f.name;
  EXPECT_EQ(data.schema.group, "");
  EXPECT_EQ(data.group, (std::vector<std::string>{"row1", "row2", "row3", "row4"}));

  // Named lists are checked as before.
  DataOptions named;
  Options o2("demo", "demo");
  declare_options(o2, named);
  ASSERT_TRUE(o2.parse({"--data", path, "--label", "y", "--immutable", "age,gender"}));
  EXPECT_THROW_WITH(read_csv(named), Error, "no immutable column 'gender'");
  DataOptions none;
  Options o3("demo", "demo");
  declare_options(o3, none);
  ASSERT_TRUE(o3.parse({"--data", path, "--label", "y", "--categorical", "smoker"}));
  EXPECT_THROW_WITH(read_csv(none), Error, "column 'sex' expects a number, found 'f'");
}

TEST(Csv, MissingDropPolicySkipsRows) {
  test::TempDir dir;
  auto o = options_for(dir.write("m.csv", "pid,steps,age,sex,y\np1,,61,female,0\np2,2,62,male,1\np3,3,63,female,0\n"));
  o.missing = "drop";
  const Dataset d = read_csv(o);
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.group[0], "p2");
}

TEST(Csv, UnknownColumnOptionsSuggest) {
  test::TempDir dir;
  auto o = options_for(dir.write("a.csv", kGood));
  o.categorical = {"sexx"};
  try {
    read_csv(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no categorical column 'sexx'"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("'sex'"), std::string::npos) << e.hint();
  }
  o = options_for(dir.file("nope.csv"));
  EXPECT_THROW_WITH(read_csv(o), Error, "cannot open data file");
}

}  // namespace
}  // namespace sensecf::data
