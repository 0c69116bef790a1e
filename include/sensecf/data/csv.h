// CSV input and output of Datasets, and the data options every command shares
// (`--data F.csv --label COL --group COL --categorical A,B --immutable A,B`).
//
// The reader validates everything and names file, line and column in its
// errors: ragged rows, non-numeric cells, empty/NaN cells (error, or dropped
// with --missing drop), a missing or non-binary label, constant features,
// duplicate headers. Quoted fields ("a,b" and "" escapes) are supported.
#pragma once

#include <string>
#include <vector>

#include "sensecf/data/dataset.h"

namespace sensecf {
class Options;
}

namespace sensecf::data {

struct DataOptions {
  std::string source = "csv";                   // csv | synth | aireadi (data/source.h)
  std::string path;                             // CSV file (source csv)
  std::string label = "high_stress";            // binary 0/1 label column
  std::string group = "participant_id";         // patient id column; "" = none
  std::vector<std::string> categorical = {"gender", "medication", "subgroup"};
  std::vector<std::string> immutable = {"age", "gender", "medication", "subgroup"};
  std::vector<std::string> drop;                // columns to ignore
  // Units of features, name=unit (for prompts and reports); the AI-READI
  // features' by default. Columns not listed have none.
  std::vector<std::string> units = {"awake_pct=%",          "light_pct=%",       "deep_pct=%",
                                    "rem_pct=%",            "steps_mean=steps/min", "glucose_mean=mg/dL",
                                    "hyper_events=count",   "tir_pct=%",         "age=years"};
  std::string missing = "error";                // error | drop
  double test_fraction = 0.2;                   // patients held out for test
  // Set by declare_options for the lists a user left at their defaults (the
  // synthetic cohort's columns): the reader then uses only the default
  // categorical columns the file has and makes every other non-numeric column
  // categorical, takes the default immutables only when the file has them all
  // (else none), takes no group when the default one is absent, and prints the
  // schema it inferred once. Whatever a user names must exist.
  bool infer_categorical = false, infer_immutable = false, infer_group = false;
};

// Declares the [data] options (keys data.*) on `options`.
void declare_options(Options& options, DataOptions& data);

// Reads options.path (whatever options.source says: data/source.h chooses).
Dataset read_csv(const DataOptions& options);

// One field of a CSV line and the 1-based column where it starts.
struct CsvCell {
  std::string text;
  long column = 0;
};
// Splits one CSV line (RFC 4180 quoting within the line; unquoted fields are
// trimmed; a trailing CR is dropped). Throws sensecf::Error naming path:line:column
// for an unterminated quote.
std::vector<CsvCell> split_csv_line(const std::string& line, const std::string& path, long line_no);
// Writes the dataset with group first, then features (categories as text), label last.
void write_csv(const Dataset& data, const std::string& path);

}  // namespace sensecf::data
