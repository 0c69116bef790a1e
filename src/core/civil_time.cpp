// Calendar arithmetic after Howard Hinnant's days_from_civil / civil_from_days
// algorithms (public domain), and the US daylight-saving rule.
#include "sensecf/core/civil_time.h"

#include <spdlog/fmt/fmt.h>

#include <cctype>

namespace sensecf {

std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

CivilDate civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const auto y = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2));
  return {y, static_cast<int>(m), static_cast<int>(d)};
}

namespace {

// Reads `n` digits at text[pos]; -1 when they are not all digits.
int digits(std::string_view text, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Day (days since epoch) of the n-th Sunday (n >= 1) of a month.
std::int64_t nth_sunday(int y, int m, int n) {
  const std::int64_t first = days_from_civil(y, m, 1);
  const std::int64_t weekday = ((first % 7) + 7 + 4) % 7;  // 1970-01-01 was a Thursday (4); 0 = Sunday
  const std::int64_t first_sunday = first + (7 - weekday) % 7;
  return first_sunday + 7 * (n - 1);
}

int standard_offset(UsZone zone) {
  switch (zone) {
    case UsZone::kPacific: return -8 * 3600;
    case UsZone::kMountain: return -7 * 3600;
    case UsZone::kCentral: return -6 * 3600;
    case UsZone::kEastern: return -5 * 3600;
  }
  return 0;
}

}  // namespace

std::optional<std::int64_t> parse_utc_timestamp(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[Z] or YYYY-MM-DD HH:MM:SS
  if (t.size() == 20 && t[19] == 'Z' && t[10] == 'T') {
    t = t.substr(0, 19);
  } else if (!(t.size() == 19 && (t[10] == ' ' || t[10] == 'T'))) {
    return std::nullopt;
  }
  if (t[4] != '-' || t[7] != '-' || t[13] != ':' || t[16] != ':') return std::nullopt;
  const int y = digits(t, 0, 4), mo = digits(t, 5, 2), d = digits(t, 8, 2);
  const int h = digits(t, 11, 2), mi = digits(t, 14, 2), s = digits(t, 17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) {
    return std::nullopt;
  }
  if (d > days_in_month(y, mo)) return std::nullopt;
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

std::string format_utc_timestamp(std::int64_t seconds) {
  const std::int64_t day = floor_div(seconds, 86400);
  const std::int64_t sod = seconds - day * 86400;
  const CivilDate c = civil_from_days(day);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z", c.year, c.month, c.day, sod / 3600,
                     sod / 60 % 60, sod % 60);
}

std::string format_minutes(std::int64_t seconds) {
  const std::int64_t day = floor_div(seconds, 86400);
  const std::int64_t sod = seconds - day * 86400;
  const CivilDate c = civil_from_days(day);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}", c.year, c.month, c.day, sod / 3600, sod / 60 % 60);
}

std::optional<UsZone> parse_us_zone(std::string_view name) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n == "pst" || n == "pdt" || n == "pacific" || n == "america/los_angeles") return UsZone::kPacific;
  if (n == "mst" || n == "mdt" || n == "mountain" || n == "america/denver") return UsZone::kMountain;
  if (n == "cst" || n == "cdt" || n == "central" || n == "america/chicago") return UsZone::kCentral;
  if (n == "est" || n == "edt" || n == "eastern" || n == "america/new_york") return UsZone::kEastern;
  return std::nullopt;
}

const char* zone_name(UsZone zone) {
  switch (zone) {
    case UsZone::kPacific: return "Pacific";
    case UsZone::kMountain: return "Mountain";
    case UsZone::kCentral: return "Central";
    case UsZone::kEastern: return "Eastern";
  }
  return "?";
}

int utc_offset(UsZone zone, std::int64_t utc) {
  const int standard = standard_offset(zone);
  // The year of the instant in standard time (the rule's dates are far from New Year).
  const int year = civil_from_days(floor_div(utc + standard, 86400)).year;
  // Daylight time starts at 02:00 standard time and ends at 02:00 daylight time
  // (= 01:00 standard time), both local; as UTC instants:
  const std::int64_t start = nth_sunday(year, 3, 2) * 86400 + 2 * 3600 - standard;
  const std::int64_t end = nth_sunday(year, 11, 1) * 86400 + 1 * 3600 - standard;
  return utc >= start && utc < end ? standard + 3600 : standard;
}

std::int64_t from_local(UsZone zone, std::int64_t local) {
  const int standard = standard_offset(zone);
  const std::int64_t as_daylight = local - (standard + 3600);  // the UTC instant if daylight time
  if (utc_offset(zone, as_daylight) == standard + 3600) return as_daylight;
  return local - standard;
}

}  // namespace sensecf
