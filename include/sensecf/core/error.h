// sensecf::Error — the one exception type of the project.
//
// Every error says what was expected, what was found, where (file:line:column,
// option key, rank) and, when we know one, how to fix it (the hint). Exceptions
// are caught at main() and at a worker's task boundary, nowhere in between.
// UsageError marks errors every rank hits identically (bad options, bad config):
// main() ends the job cleanly for those instead of aborting the communicator.
#pragma once

#include <stdexcept>
#include <string>

namespace sensecf {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string hint = {})
      : std::runtime_error(message), hint_(std::move(hint)) {}
  const std::string& hint() const noexcept { return hint_; }

 private:
  std::string hint_;
};

// An error in the command line or configuration: identical on every rank.
class UsageError : public Error {
 public:
  using Error::Error;
};

// An error that running the same work again cannot get past: a server that
// refuses the API key, a wrong URL or model name, an answer missing from an
// offline cache. The sweep fails such a task at once instead of retrying it
// (sweep.max_attempts); a rerun with --retry-failed, after the fix, tries again.
class PermanentError : public Error {
 public:
  using Error::Error;
};

// A location in an input file, printed as "path:line:column" (1-based; 0 = unknown).
struct SourceLocation {
  std::string path;
  long line = 0;
  long column = 0;
  std::string str() const;
};

}  // namespace sensecf
