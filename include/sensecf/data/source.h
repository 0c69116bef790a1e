// Where a command's rows come from: the explicit choice `data.source`.
//
//   csv      a feature CSV (data.path), one row per sample; `sensecf synth`
//            writes one, AI-READI ingest will write one.
//   synth    the synthetic AI-READI-like cohort of [synth]. A sweep writes it
//            to its work directory (cohort.csv) and then reads it like any CSV,
//            so every data option applies to it unchanged.
//   aireadi  an AI-READI release (data.path = its folder). A sweep ingests it
//            in its first tasks (ingest/aireadi.h, docs/aireadi.md) into
//            features.csv in its work directory and reads that like any CSV;
//            other commands read the table `sensecf ingest` writes.
//
// Nothing is inferred from an empty data.path: csv without a path is an error
// that says what to pass.
#pragma once

#include <string>
#include <vector>

#include "sensecf/data/csv.h"

namespace sensecf::data {

enum class Source { kCsv, kSynth, kAiReadi };

// "csv", "synth", "aireadi": the values data.source accepts.
std::vector<std::string> source_names();
Source parse_source(const std::string& name);

// Throws a UsageError when data.source and data.path disagree (csv without a
// path, synth with one, aireadi without one) or the source cannot serve
// `command` ("sweep" serves synth and aireadi; other commands read CSV files).
void check_source(const DataOptions& options, const std::string& command);

// The data set of a csv source (after check_source). Sources that are not
// files (synth) are turned into one by their owner first: see
// sweep::prepare_workdir.
Dataset load_dataset(const DataOptions& options, const std::string& command);

}  // namespace sensecf::data
