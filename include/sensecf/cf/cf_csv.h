// The counterfactual CSV file: what `sensecf explain` writes and
// `sensecf evaluate-cf` reads back.
//
// Layout (one line per CF; a query without any CF gets one line with found=0
// and empty feature cells, so nothing is silently dropped):
//   row, <group column>, query, cf_index, found, <features...>, target,
//   prediction, probability, valid, seconds, note
// `row` is the factual's row index in the data file (header excluded);
// <group column> is named after Schema::group ("group" when there is none);
// categorical features are written as category names, numbers in their
// shortest exact form (probability too; seconds with 6 significant digits).
// Fields holding a comma, quote or newline are quoted (RFC 4180).
//
// Not here: the metrics (cf/metrics.h), choosing the rows, the model.
#pragma once

#include <string>
#include <vector>

#include "sensecf/cf/generator.h"

namespace sensecf::cf {

// Writes results (QueryResult::query indexes rows) to path. rows[q] is the data
// row of query q; group_values holds the group id of every data row. Throws
// sensecf::Error when the file cannot be written.
void write_cfs_csv(const std::string& path, const data::Schema& schema,
                   const std::vector<std::string>& group_values, const std::vector<std::size_t>& rows,
                   const std::vector<QueryResult>& results);

// What read_cfs_csv recovers: query q is the q-th distinct data row in the file.
struct CfsCsv {
  std::vector<std::size_t> rows;     // [n_queries] data row of each query
  std::vector<QueryResult> results;  // [n_queries] query, target, seconds and the CFs' values
                                     // (p1/valid/note are not read: recompute them from the model)
};

// Reads a file written by write_cfs_csv. Columns are found by header name; the
// features come from schema; every row index must be below n_data_rows. Throws
// sensecf::Error naming file:line(:column) and what was expected for a missing
// column, a wrong field count, a non-number, an unknown category or a row
// outside the data.
CfsCsv read_cfs_csv(const std::string& path, const data::Schema& schema, std::size_t n_data_rows);
// The same, and each line's group (second column) must be the data row's
// group id in `group_values` (one per data row): CFs of another data file, or
// of one whose rows were reordered, are refused. Row indices must be whole
// numbers, target and found 0 or 1, feature values finite.
CfsCsv read_cfs_csv(const std::string& path, const data::Schema& schema, const std::vector<std::string>& group_values);
CfsCsv read_cfs_csv(const std::string& path, const data::Schema& schema, std::size_t n_data_rows,
                    const std::vector<std::string>* group_values);

}  // namespace sensecf::cf
