// A real HTTP/1.1 server on the loopback interface, for tests of the remote
// LLM client (remote/): libcurl talks to it over TCP exactly as it would to an
// OpenAI-compatible endpoint, so connection reuse, timeouts, truncated bodies
// and status handling are exercised for real, not through a mock of libcurl.
//
// One thread per accepted connection; each reads requests in a loop
// (keep-alive) until the client closes, sends `Connection: close`, or the
// server stops. Request bodies by Content-Length or chunked transfer coding;
// `Expect: 100-continue` is answered with an interim 100. A Handler turns each
// request into a reply; a reply can be delayed, or cut short mid-body to
// simulate a dropped connection.
//
// Deliberately not: TLS, HTTP/2, pipelining beyond in-order replies, request
// trailers, anything but 127.0.0.1. Test support only.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sensecf::testing {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // the request target, query included
  std::map<std::string, std::string> headers;  // lowercase names, trimmed values
  std::string body;                            // de-chunked
};

struct HttpReply {
  int status = 200;
  // Sent as given; Content-Length is added unless present, and `Connection:
  // close` when the connection ends after this reply.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int delay_ms = 0;       // sleep before sending anything (cut short by stop())
  long drop_after = -1;   // >= 0: headers with the full Content-Length, then only
                          // this many body bytes, then close the connection
};

class LoopbackHttpServer {
 public:
  using Handler = std::function<HttpReply(const HttpRequest&)>;

  // Binds 127.0.0.1:port (0: an ephemeral port) and starts accepting. Throws
  // sensecf::Error when the port cannot be bound.
  explicit LoopbackHttpServer(Handler handler, int port = 0);
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:<port>"
  std::string base_url() const;
  // Requests answered (or being answered) so far.
  std::size_t requests() const { return n_requests_.load(); }
  // Connections accepted so far.
  std::size_t connections() const { return n_connections_.load(); }

  // Stops accepting, wakes every connection (open keep-alive ones and delayed
  // replies included) and joins all threads. Idempotent; the destructor calls it.
  void stop();

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void accept_loop();
  void serve(Connection* connection);
  void reap_finished();
  // Sleeps up to ms; false when stop() interrupted it.
  bool wait_unless_stopped(int ms);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> n_requests_{0};
  std::atomic<std::size_t> n_connections_{0};
  std::thread acceptor_;

  std::mutex mutex_;  // guards connections_ and each Connection's fd
  std::condition_variable stop_cv_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::mutex stop_mutex_;  // serialises stop()
};

// The reason phrase of a status code ("OK", "Too Many Requests", ...).
const char* http_reason(int status);

}  // namespace sensecf::testing
