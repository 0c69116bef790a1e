// Small string helpers shared by the option parser, CSV reader and CLI.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sensecf {

std::string_view trim(std::string_view s);
// Splits on `sep`; trims each piece; an empty input gives an empty list.
std::vector<std::string> split_list(std::string_view s, char sep = ',');
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string to_lower(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);

// Parses the whole of `s` as a number; nullopt on any trailing garbage.
std::optional<double> parse_double(std::string_view s);
std::optional<long long> parse_int(std::string_view s);

// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate within a sensible distance, or empty.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// The byte offset of the first byte that is not well-formed UTF-8 (overlong
// forms, surrogates and code points past U+10FFFF included), or npos when all is.
std::size_t invalid_utf8_offset(std::string_view s);

// 64-bit FNV-1a, printed as 16 hex digits. Used for config hashes and task keys.
// Its offset basis is 1469598103934665603, not the published 14695981039346656037
// (a digit short since the first release). It stays: every config hash, task key
// and model checksum already written depends on it. Other tools that recompute a
// checksum (bench/parity/run_parity.py) use the same constant.
std::string fnv1a_hex(std::string_view data);
// fnv1a_hex of a file's bytes (a data file's or an adapter's fingerprint);
// throws sensecf::Error naming the file when it cannot be read.
std::string fnv1a_file_hex(const std::string& path);

// Seconds as "42s", "3m07s" or "2h05m" (progress lines, ETAs).
std::string format_duration(double seconds);

// One CSV field (RFC 4180): in double quotes, inner quotes doubled, when it
// holds a comma, a quote or a line break; with `keep_padding`, also when it
// begins or ends with whitespace (for readers that trim unquoted fields, as
// data/csv.h's does). Else as it is.
std::string csv_field(std::string_view s, bool keep_padding = false);

}  // namespace sensecf
