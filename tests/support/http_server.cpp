// The loopback HTTP/1.1 server (see http_server.h).
#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <iterator>
#include <string_view>

#include "sensecf/core/error.h"

namespace sensecf::testing {
namespace {

constexpr std::size_t kMaxHead = 64 * 1024;           // request line + headers
constexpr std::size_t kMaxBody = 256 * 1024 * 1024;   // a test never sends more
constexpr std::size_t kReadChunk = 64 * 1024;

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

bool has_token(const std::string& value, std::string_view token) {
  return lowercase(value).find(token) != std::string::npos;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Buffered reads from one connection; bytes past the current request stay in
// buf for the next one (a client may send the next request early).
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}

  // false on EOF, error or shutdown.
  bool fill() {
    if (pos_ > 0 && pos_ == buf_.size()) {  // all consumed: start over
      buf_.clear();
      pos_ = 0;
    } else if (pos_ > kReadChunk) {  // keep the buffer from growing with consumed bytes
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    char tmp[kReadChunk];
    for (;;) {
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<std::size_t>(n));
      return true;
    }
  }

  // Reads up to and including `delim`; returns the text before it. false on
  // EOF or when more than `limit` bytes arrive without it.
  bool read_until(std::string_view delim, std::size_t limit, std::string& out) {
    std::size_t scanned = 0;  // bytes after pos_ known not to start delim (fill() may move pos_)
    for (;;) {
      const std::size_t at = buf_.find(delim, pos_ + scanned);
      if (at != std::string::npos) {
        out.assign(buf_, pos_, at - pos_);
        pos_ = at + delim.size();
        return true;
      }
      const std::size_t pending = buf_.size() - pos_;
      if (pending > limit) return false;
      scanned = pending >= delim.size() ? pending - delim.size() + 1 : 0;
      if (!fill()) return false;
    }
  }

  bool read_exact(std::size_t n, std::string& out) {
    while (buf_.size() - pos_ < n)
      if (!fill()) return false;
    out.append(buf_, pos_, n);
    pos_ += n;
    return true;
  }

  // Nothing buffered: the connection is idle between requests.
  bool idle() const { return pos_ == buf_.size(); }

 private:
  int fd_;
  std::string buf_;
  std::size_t pos_ = 0;
};

enum class ReadResult { kOk, kClosed, kBad };

// Request line and headers; sets keep_alive from the version and Connection.
ReadResult read_head(Reader& reader, HttpRequest& request, bool& keep_alive) {
  std::string head;
  if (!reader.read_until("\r\n\r\n", kMaxHead, head)) return reader.idle() ? ReadResult::kClosed : ReadResult::kBad;
  std::size_t line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) return ReadResult::kBad;
  request.method = line.substr(0, sp1);
  request.path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string version = line.substr(sp2 + 1);
  if (version.rfind("HTTP/1.", 0) != 0) return ReadResult::kBad;

  while (line_end != std::string::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string_view header(head.data() + start,
                                  (line_end == std::string::npos ? head.size() : line_end) - start);
    const std::size_t colon = header.find(':');
    if (colon == std::string_view::npos || colon == 0) return ReadResult::kBad;
    std::string name = lowercase(std::string(header.substr(0, colon)));
    std::string value = trim(header.substr(colon + 1));
    auto [it, inserted] = request.headers.emplace(std::move(name), value);
    if (!inserted) it->second += ", " + value;
  }
  const auto connection = request.headers.find("connection");
  if (version == "HTTP/1.0")
    keep_alive = connection != request.headers.end() && has_token(connection->second, "keep-alive");
  else
    keep_alive = connection == request.headers.end() || !has_token(connection->second, "close");
  return ReadResult::kOk;
}

ReadResult read_chunked(Reader& reader, std::string& body) {
  for (;;) {
    std::string size_line;
    if (!reader.read_until("\r\n", 1024, size_line)) return ReadResult::kBad;
    std::size_t size = 0;
    try {
      size = std::stoul(size_line.substr(0, size_line.find(';')), nullptr, 16);
    } catch (const std::exception&) {
      return ReadResult::kBad;
    }
    if (size == 0) break;
    if (body.size() + size > kMaxBody) return ReadResult::kBad;
    std::string crlf;
    if (!reader.read_exact(size, body) || !reader.read_exact(2, crlf) || crlf != "\r\n") return ReadResult::kBad;
  }
  for (;;) {  // trailers, up to the empty line
    std::string trailer;
    if (!reader.read_until("\r\n", kMaxHead, trailer)) return ReadResult::kBad;
    if (trailer.empty()) return ReadResult::kOk;
  }
}

ReadResult read_body(int fd, Reader& reader, HttpRequest& request) {
  const auto expect = request.headers.find("expect");
  if (expect != request.headers.end() && lowercase(expect->second) == "100-continue" &&
      !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n"))
    return ReadResult::kClosed;
  const auto coding = request.headers.find("transfer-encoding");
  if (coding != request.headers.end() && has_token(coding->second, "chunked")) return read_chunked(reader, request.body);
  const auto length = request.headers.find("content-length");
  if (length == request.headers.end()) return ReadResult::kOk;
  std::size_t n = 0;
  try {
    std::size_t used = 0;
    n = std::stoul(length->second, &used);
    if (used != length->second.size()) return ReadResult::kBad;
  } catch (const std::exception&) {
    return ReadResult::kBad;
  }
  if (n > kMaxBody) return ReadResult::kBad;
  request.body.reserve(n);
  return reader.read_exact(n, request.body) ? ReadResult::kOk : ReadResult::kClosed;
}

std::string reply_head(const HttpReply& reply, bool keep_alive) {
  std::string head = "HTTP/1.1 " + std::to_string(reply.status) + " " + http_reason(reply.status) + "\r\n";
  bool has_length = false;
  for (const auto& [name, value] : reply.headers) {
    has_length = has_length || lowercase(name) == "content-length";
    head += name + ": " + value + "\r\n";
  }
  if (!has_length) head += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
  if (!keep_alive) head += "Connection: close\r\n";
  return head + "\r\n";
}

}  // namespace

const char* http_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

LoopbackHttpServer::LoopbackHttpServer(Handler handler, int port) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw Error(std::string("loopback server: socket() failed: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, SOMAXCONN) != 0) {
    const int err = errno;
    ::close(listen_fd_);
    throw Error("loopback server: cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(err),
                port != 0 ? "is another process using that port? port 0 picks a free one" : "");
  }
  socklen_t size = sizeof address;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &size);
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

LoopbackHttpServer::~LoopbackHttpServer() { stop(); }

std::string LoopbackHttpServer::base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void LoopbackHttpServer::stop() {
  std::lock_guard<std::mutex> serial(stop_mutex_);
  stopping_.store(true);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_cv_.notify_all();
    for (const auto& c : connections_)
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);  // wakes a recv() on an idle keep-alive connection
  }
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept() (Linux)
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  std::vector<std::unique_ptr<Connection>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    all.swap(connections_);
  }
  for (auto& c : all)
    if (c->thread.joinable()) c->thread.join();
}

void LoopbackHttpServer::accept_loop() {
  while (!stopping_.load()) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_.load()) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;  // EINTR, ECONNABORTED, ...
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    reap_finished();
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_.load()) {  // stop() has already shut the others down
      ::close(fd);
      return;
    }
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    Connection* raw = connection.get();
    connections_.push_back(std::move(connection));
    n_connections_.fetch_add(1);
    raw->thread = std::thread([this, raw] { serve(raw); });
  }
}

void LoopbackHttpServer::reap_finished() {
  std::vector<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto keep = std::partition(connections_.begin(), connections_.end(),
                               [](const std::unique_ptr<Connection>& c) { return !c->done.load(); });
    std::move(keep, connections_.end(), std::back_inserter(finished));
    connections_.erase(keep, connections_.end());
  }
  for (auto& c : finished) c->thread.join();
}

bool LoopbackHttpServer::wait_unless_stopped(int ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !stop_cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_.load(); });
}

void LoopbackHttpServer::serve(Connection* connection) {
  const int fd = connection->fd;  // only this thread closes it, below
  Reader reader(fd);
  bool keep_alive = true;
  while (keep_alive && !stopping_.load()) {
    HttpRequest request;
    ReadResult result = read_head(reader, request, keep_alive);
    if (result == ReadResult::kOk) result = read_body(fd, reader, request);
    if (result == ReadResult::kClosed) break;
    if (result == ReadResult::kBad) {
      HttpReply bad{400, {{"Content-Type", "text/plain"}}, "malformed HTTP request\n"};
      send_all(fd, reply_head(bad, false) + bad.body);
      break;
    }
    n_requests_.fetch_add(1);

    HttpReply reply;
    try {
      reply = handler_(request);
    } catch (const std::exception& e) {
      reply = HttpReply{500, {{"Content-Type", "text/plain"}}, std::string("handler threw: ") + e.what() + "\n"};
    }
    if (reply.delay_ms > 0 && !wait_unless_stopped(reply.delay_ms)) break;
    const bool drop = reply.drop_after >= 0;
    std::string out = reply_head(reply, keep_alive && !drop);
    if (drop)
      out.append(reply.body, 0, std::min(reply.body.size(), static_cast<std::size_t>(reply.drop_after)));
    else
      out += reply.body;
    if (!send_all(fd, out) || drop) break;
  }
  ::shutdown(fd, SHUT_WR);  // a clean FIN after the last byte, before close
  std::lock_guard<std::mutex> lock(mutex_);
  ::close(fd);
  connection->fd = -1;
  connection->done.store(true);
}

}  // namespace sensecf::testing
