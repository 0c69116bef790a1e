// Civil time without the C library's global state: UTC timestamps as seconds
// since 1970-01-01, calendar dates, and the four US time zones with their
// daylight-saving rule. Thread-safe, no tzdata needed (the rule since 2007 is
// fixed; a unit test checks it against the system's tzdata).
//
// AI-READI writes every timestamp in UTC; its windows and nights are local
// (docs/aireadi.md). That is all this is for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sensecf {

// Days since 1970-01-01 of a proleptic Gregorian date (y, m 1-12, d 1-31).
std::int64_t days_from_civil(int y, int m, int d);
struct CivilDate {
  int year = 1970, month = 1, day = 1;
};
CivilDate civil_from_days(std::int64_t days);

// "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DD HH:MM:SS" (UTC) -> seconds since the
// epoch; nullopt when the text is neither (fields out of range included).
std::optional<std::int64_t> parse_utc_timestamp(std::string_view text);
// seconds -> "YYYY-MM-DDTHH:MM:SSZ".
std::string format_utc_timestamp(std::int64_t seconds);
// seconds (any epoch-based clock, e.g. local) -> "YYYY-MM-DDTHH:MM".
std::string format_minutes(std::int64_t seconds);

// The four zones of the contiguous US, with US daylight time (since 2007: from
// the second Sunday of March, 02:00 local standard time, to the first Sunday
// of November, 02:00 local daylight time).
enum class UsZone { kPacific, kMountain, kCentral, kEastern };
// "pst"/"pdt"/"pacific" ... (case-insensitive); nullopt for anything else.
std::optional<UsZone> parse_us_zone(std::string_view name);
const char* zone_name(UsZone zone);  // "Pacific", ...
// Offset from UTC in seconds at the instant `utc` (e.g. -25200 for PDT).
int utc_offset(UsZone zone, std::int64_t utc);
// Local seconds (utc + offset): a clock whose days are the zone's local days.
inline std::int64_t to_local(UsZone zone, std::int64_t utc) { return utc + utc_offset(zone, utc); }
// The UTC instant of a local wall-clock time. In the hour skipped in spring the
// standard-time reading is used; in the repeated autumn hour, the first one.
std::int64_t from_local(UsZone zone, std::int64_t local);

// Floor division, for days of negative seconds.
inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

}  // namespace sensecf
