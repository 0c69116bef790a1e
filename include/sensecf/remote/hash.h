// SHA-256 for the response cache's keys (remote/cache.h): a request's key is
// the hash of the exact body bytes sent, so anyone holding a body (the client,
// a test server, a user with `sha256sum`) can name its cache entry.
#pragma once

#include <string>
#include <string_view>

namespace sensecf::remote {

// 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace sensecf::remote
