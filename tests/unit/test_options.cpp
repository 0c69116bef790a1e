// Options: precedence, INI sections, aliases, unknown keys, bad values, checks.
#include <gtest/gtest.h>

#include "sensecf/core/error.h"
#include "sensecf/core/options.h"
#include "sensecf/core/strings.h"
#include "test_util.h"

namespace sensecf {
namespace {

struct Fixture {
  std::string label = "y";
  double fraction = 0.5;
  int epochs = 10;
  bool json = false;
  std::vector<double> ratios = {0.2, 0.4};
  std::string level = "info";
  Options options{"demo", "a demo command"};
  Fixture() {
    options.add("data.label", &label, "label column", "label");
    options.add("data.test_fraction", &fraction, "test share", "test-fraction");
    options.add("clf.epochs", &epochs, "epochs");
    options.add("out.json", &json, "json output", "json").not_hashed();
    options.add("sweep.ratios", &ratios, "ratios");
    options.add("log.level", &level, "level").choices({"info", "debug"}).not_hashed();
  }
};

TEST(Strings, PrefixAndSuffix) {
  EXPECT_TRUE(starts_with("model.safetensors", "model."));
  EXPECT_FALSE(starts_with("model", "model.safetensors"));
  EXPECT_TRUE(ends_with("logits.npy", ".npy"));
  EXPECT_TRUE(ends_with("x", ""));
  EXPECT_FALSE(ends_with("npy", ".npy"));
  EXPECT_FALSE(ends_with("logits.npy.h5", ".npy"));
}

TEST(Options, DefaultsComeFromTheTargets) {
  Fixture f;
  ASSERT_TRUE(f.options.parse({}));
  EXPECT_EQ(f.label, "y");
  EXPECT_EQ(f.epochs, 10);
  EXPECT_NE(f.options.effective_ini().find("label = y"), std::string::npos);
}

TEST(Options, PrecedenceDefaultsFileCommandLine) {
  test::TempDir dir;
  const auto ini = dir.write("c.ini", "# comment\n[data]\nlabel = from_file\ntest_fraction = 0.3\n\n[clf]\nepochs=7\n");
  Fixture f;
  ASSERT_TRUE(f.options.parse({"--config", ini, "--clf.epochs", "99"}));
  EXPECT_EQ(f.label, "from_file");      // file beats default
  EXPECT_DOUBLE_EQ(f.fraction, 0.3);
  EXPECT_EQ(f.epochs, 99);              // CLI beats file
  const auto ini_text = f.options.effective_ini();
  EXPECT_NE(ini_text.find("config file"), std::string::npos);
  EXPECT_NE(ini_text.find("command line"), std::string::npos);
}

TEST(Options, AliasesDashesAndEqualsForms) {
  Fixture f;
  ASSERT_TRUE(f.options.parse({"--label=stress", "--test-fraction", "0.25", "--json", "--sweep.ratios", "0.2 0.4,1.0"}));
  EXPECT_EQ(f.label, "stress");
  EXPECT_DOUBLE_EQ(f.fraction, 0.25);
  EXPECT_TRUE(f.json);
  EXPECT_EQ(f.ratios, (std::vector<double>{0.2, 0.4, 1.0}));
}

TEST(Options, VerboseAndQuietSetTheLogLevel) {
  Fixture f;
  ASSERT_TRUE(f.options.parse({"-v", "--label", "y"}));
  EXPECT_EQ(f.level, "debug");
  Fixture g;
  ASSERT_TRUE(g.options.parse({"--verbose"}));
  EXPECT_EQ(g.level, "debug");
  std::string level = "info";
  Options o{"demo", "demo"};
  o.add("log.level", &level, "level").choices({"debug", "info", "warn"});
  ASSERT_TRUE(o.parse({"-q"}));
  EXPECT_EQ(level, "warn");
  // Without a log level, -v is an unknown option like any other.
  int n = 0;
  Options bare{"bare", "bare"};
  bare.add("x.n", &n, "n");
  EXPECT_THROW(bare.parse({"-v"}), UsageError);
}

TEST(Options, AConfigWithAByteOrderMarkAndCrlfLineEndsIsRead) {
  test::TempDir dir;
  const auto path = dir.write("windows.ini", "\xEF\xBB\xBF[data]\r\nlabel = y\r\n[clf]\r\nepochs = 3\r\n");
  Fixture f;
  ASSERT_TRUE(f.options.parse({"--config", path}));
  EXPECT_EQ(f.label, "y");
  EXPECT_EQ(f.epochs, 3);
}

TEST(Options, InlineCommentsAndQuotedValues) {
  test::TempDir dir;
  const auto path = dir.write("c.ini", "[data]\nlabel = stress   # the label\ntest_fraction = 0.3 ; a share\n"
                                       "[sweep]\nratios =                      # default\n[clf]\nepochs = 4#5\n");
  Fixture f;
  ASSERT_THROW(f.options.parse({"--config", path}), UsageError);  // '#' without a space before it is part of 4#5
  const auto ok = dir.write("ok.ini", "[data]\nlabel = stress   # the label\ntest_fraction = 0.3 ; a share\n"
                                      "[sweep]\nratios =                      # default\n");
  Fixture g;
  ASSERT_TRUE(g.options.parse({"--config", ok}));
  EXPECT_EQ(g.label, "stress");
  EXPECT_DOUBLE_EQ(g.fraction, 0.3);
  EXPECT_TRUE(g.ratios.empty());
  // A value holding " #" is quoted; an unclosed quote is an error naming the line.
  const auto quoted = dir.write("q.ini", "[data]\nlabel = \"stress #2\"  # quoted\n");
  Fixture h;
  ASSERT_TRUE(h.options.parse({"--config", quoted}));
  EXPECT_EQ(h.label, "stress #2");
  const auto open_quote = dir.write("o.ini", "[data]\nlabel = \"stress\n");
  Fixture k;
  EXPECT_THROW_WITH(k.options.parse({"--config", open_quote}), UsageError, "o.ini:2: a value that opens a double quote");
  // The effective configuration (values, then "# source") reads back as itself.
  Fixture a;
  ASSERT_TRUE(a.options.parse({"--label", "y2", "--sweep.ratios", "0.1,0.3"}));
  const auto effective = dir.write("eff.ini", a.options.effective_ini());
  Fixture b;
  ASSERT_TRUE(b.options.parse({"--config", effective}));
  EXPECT_EQ(b.label, "y2");
  EXPECT_EQ(b.ratios, (std::vector<double>{0.1, 0.3}));
  EXPECT_EQ(b.options.config_hash(), a.options.config_hash());
}

TEST(Options, IntegersAreCountsUnlessTheDefaultIsNegative) {
  int limit = 0, factual_class = -1;
  long long budget = 5;
  Options o{"demo", "demo"};
  o.add("x.limit", &limit, "rows (0: all)");
  o.add("x.factual_class", &factual_class, "class (-1: all)");
  o.add("x.budget", &budget, "budget");
  EXPECT_THROW_WITH(o.parse({"--x.limit", "-1"}), UsageError, "option 'x.limit': expected a whole number >= 0, got '-1'");
  Options p{"demo", "demo"};
  p.add("x.factual_class", &factual_class, "class (-1: all)");
  p.add("x.budget", &budget, "budget");
  ASSERT_TRUE(p.parse({"--x.factual_class", "-1", "--x.budget", "9223372036854775807"}));
  EXPECT_EQ(factual_class, -1);
  EXPECT_EQ(budget, 9223372036854775807LL);
  Options q{"demo", "demo"};
  q.add("x.limit", &limit, "rows");
  EXPECT_THROW_WITH(q.parse({"--x.limit", "3000000000"}), UsageError, "expected a whole number from");
}

TEST(Strings, SubnormalNumbersParseAndOverflowDoesNot) {
  EXPECT_EQ(parse_double("4.9e-320"), 4.9e-320);
  EXPECT_EQ(parse_double("1e-400"), 0.0);  // below the smallest subnormal: rounds to 0, still a number
  EXPECT_FALSE(parse_double("1e400"));
  EXPECT_FALSE(parse_double("-1e400"));
  EXPECT_EQ(parse_double("2.5"), 2.5);
}

TEST(Strings, InvalidUtf8Offset) {
  constexpr auto ok = std::string_view::npos;
  EXPECT_EQ(invalid_utf8_offset("plain ascii"), ok);
  EXPECT_EQ(invalid_utf8_offset("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), ok);  // é € 😀
  EXPECT_EQ(invalid_utf8_offset("caf\xE9"), 3u);                        // Latin-1 é
  EXPECT_EQ(invalid_utf8_offset("ab\xC3"), 2u);                         // cut short
  EXPECT_EQ(invalid_utf8_offset("\xC0\xAF"), 0u);                       // overlong '/'
  EXPECT_EQ(invalid_utf8_offset("x\xED\xA0\x80"), 1u);                  // a UTF-16 surrogate
  EXPECT_EQ(invalid_utf8_offset("\xF4\x90\x80\x80"), 0u);               // past U+10FFFF
  EXPECT_EQ(invalid_utf8_offset("\xE2\x82"), 0u);
  EXPECT_EQ(invalid_utf8_offset("\xE2\x28\xA1"), 0u);                   // bad continuation
}

TEST(Options, AConfigThatIsADirectoryIsRefused) {
  test::TempDir dir;
  Fixture f;
  EXPECT_THROW_WITH(f.options.parse({"--config", dir.path().string()}), UsageError, "is a directory, not a config file");
}

TEST(Options, UnknownCommandLineOptionSuggestsTheClosestKey) {
  Fixture f;
  try {
    f.options.parse({"--data.lable", "x"});
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("data.lable"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("data.label"), std::string::npos) << e.hint();
  }
}

TEST(Options, UnknownConfigKeyNamesFileAndLine) {
  test::TempDir dir;
  const auto ini = dir.write("c.ini", "[data]\nlabel = a\nlabell = b\n");
  Fixture f;
  try {
    f.options.parse({"--config", ini});
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(ini + ":3"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("data.label"), std::string::npos) << e.hint();
  }
}

TEST(Options, MalformedConfigLines) {
  test::TempDir dir;
  Fixture f1;
  EXPECT_THROW_WITH(f1.options.parse({"--config", dir.write("a.ini", "[data\n")}), UsageError, "a.ini:1");
  Fixture f2;
  EXPECT_THROW_WITH(f2.options.parse({"--config", dir.write("b.ini", "[data]\njust words\n")}), UsageError,
                    "b.ini:2: expected 'key = value'");
  Fixture f3;
  EXPECT_THROW_WITH(f3.options.parse({"--config", dir.write("c.ini", "[data]\nlabel=a\nlabel=b\n")}), UsageError,
                    "repeats line 2");
  Fixture f4;
  EXPECT_THROW_WITH(f4.options.parse({"--config", dir.file("missing.ini")}), UsageError, "cannot open config file");
}

TEST(Options, BadValuesAreRejectedWithTheKey) {
  Fixture f1;
  EXPECT_THROW_WITH(f1.options.parse({"--clf.epochs", "ten"}), UsageError, "clf.epochs");
  Fixture f2;
  EXPECT_THROW_WITH(f2.options.parse({"--test-fraction", "0.5x"}), UsageError, "expected a finite number");
  Fixture f3;
  EXPECT_THROW_WITH(f3.options.parse({"--log.level", "loud"}), UsageError, "must be one of info|debug");
  Fixture f3b;
  try {
    f3b.options.parse({"--log.level", "infp"});
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    EXPECT_EQ(e.hint(), "did you mean 'info'?");
  }
  Fixture f4;
  EXPECT_THROW_WITH(f4.options.parse({"--sweep.ratios", "0.2,abc"}), UsageError, "'abc' is not one");
  Fixture f5;
  EXPECT_THROW_WITH(f5.options.parse({"--json", "maybe"}), UsageError, "expected true/false");
}

TEST(Options, ChecksRunAfterParsing) {
  Fixture f;
  f.options.add_check([&f] {
    if (f.fraction >= 1) throw UsageError("data.test_fraction must be < 1");
  });
  EXPECT_THROW_WITH(f.options.parse({"--test-fraction", "1.5"}), UsageError, "must be < 1");
}

TEST(Options, ConfigHashFollowsHashedValuesOnly) {
  Fixture a, b, c;
  ASSERT_TRUE(a.options.parse({}));
  ASSERT_TRUE(b.options.parse({"--json", "--log.level", "debug"}));  // not hashed
  ASSERT_TRUE(c.options.parse({"--clf.epochs", "11"}));
  EXPECT_EQ(a.options.config_hash(), b.options.config_hash());
  EXPECT_NE(a.options.config_hash(), c.options.config_hash());
  EXPECT_EQ(a.options.config_hash().size(), 16u);
}

TEST(Options, HelpListsEveryKeyWithDefaultAndAlias) {
  Fixture f;
  const auto help = f.options.help();
  for (const char* key : {"--data.label", "--data.test_fraction", "--clf.epochs", "--sweep.ratios"})
    EXPECT_NE(help.find(key), std::string::npos) << key;
  EXPECT_NE(help.find("(=0.2,0.4)"), std::string::npos) << help;
  EXPECT_NE(help.find("short: --label"), std::string::npos);
}

}  // namespace
}  // namespace sensecf
