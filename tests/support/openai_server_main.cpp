// openai_test_server: the fake OpenAI endpoint (openai_server.h) as a process,
// for end-to-end tests that run the sensecf binary against it (and kill it, or
// the client, mid-run). Listens on 127.0.0.1 until SIGTERM or SIGINT, then
// exits 0. Not a general-purpose server.
//
//   openai_test_server --port-file port.txt --log requests.log --faults 429:0,500x2
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "openai_server.h"
#include "sensecf/core/error.h"

namespace {

using sensecf::UsageError;
using sensecf::testing::FakeOpenAiOptions;

struct ServerOptions {
  int port = 0;
  std::string port_file;
  FakeOpenAiOptions fake;
};

int to_int(const std::string& flag, const std::string& value) {
  std::size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || n < 0)
    throw UsageError(flag + " takes an integer >= 0, got '" + value + "'");
  return n;
}

double to_double(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  const double x = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size())
    throw UsageError(flag + " takes a number, got '" + value + "'");
  return x;
}

// One declaration per option: its name, value placeholder, help, setter.
struct Flag {
  const char* name;
  const char* value;
  const char* help;
  std::function<void(ServerOptions&, const std::string&)> set;
};

const std::vector<Flag>& flags() {
  static const std::vector<Flag> kFlags = {
      {"--port", "N", "port on 127.0.0.1 (default 0: an ephemeral one)",
       [](ServerOptions& o, const std::string& v) { o.port = to_int("--port", v); }},
      {"--port-file", "FILE", "write the port there once listening (atomically: a temporary file, then rename)",
       [](ServerOptions& o, const std::string& v) { o.port_file = v; }},
      {"--log", "FILE", "append '<sha256 of body> <status>' per chat request, flushed at once",
       [](ServerOptions& o, const std::string& v) { o.fake.log_path = v; }},
      {"--delay-ms", "N", "sleep before every answer (default 0)",
       [](ServerOptions& o, const std::string& v) { o.fake.delay_ms = to_int("--delay-ms", v); }},
      {"--faults", "SCRIPT", "faults of the first requests, e.g. 429:0,500x3,timeout:3000,drop,malformed,noblock,long",
       [](ServerOptions& o, const std::string& v) {
         sensecf::testing::parse_fault_script(v);  // refuse a bad script before listening
         o.fake.faults = v;
       }},
      {"--answer", "MODE", "answer of the other requests: echo (default), noblock, long, json",
       [](ServerOptions& o, const std::string& v) { o.fake.answer = sensecf::testing::parse_answer_mode(v); }},
      {"--factor", "X", "echo: multiplier of the mutable numeric values (default 0.8)",
       [](ServerOptions& o, const std::string& v) { o.fake.factor = to_double("--factor", v); }},
      {"--api-key", "KEY", "expected bearer key; others get 401 (default: not checked)",
       [](ServerOptions& o, const std::string& v) { o.fake.api_key = v; }},
      {"--model", "NAME", "the model GET /v1/models lists (default fake-model)",
       [](ServerOptions& o, const std::string& v) { o.fake.model = v; }},
  };
  return kFlags;
}

void print_help() {
  std::cout << "usage: openai_test_server [options]\n"
               "A fake OpenAI-compatible endpoint on 127.0.0.1 for tests; runs until SIGTERM or SIGINT.\n\n";
  for (const Flag& f : flags()) {
    std::string left = std::string("  ") + f.name + " " + f.value;
    left.resize(std::max<std::size_t>(left.size() + 2, 22), ' ');
    std::cout << left << f.help << "\n";
  }
}

ServerOptions parse(int argc, char** argv, bool& help) {
  ServerOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      help = true;
      return options;
    }
    std::string name = arg, value;
    const std::size_t eq = arg.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const Flag* flag = nullptr;
    for (const Flag& f : flags())
      if (name == f.name) flag = &f;
    if (!flag) throw UsageError("unknown option '" + arg + "'", "see --help");
    if (!inline_value) {
      if (i + 1 >= argc) throw UsageError(name + " needs a value (" + flag->value + ")");
      value = argv[++i];
    }
    flag->set(options, value);
  }
  return options;
}

void write_port_file(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) throw sensecf::Error("cannot write the port file '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw sensecf::Error("cannot rename '" + tmp + "' to '" + path + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool help = false;
    const ServerOptions options = parse(argc, argv, help);
    if (help) {
      print_help();
      return 0;
    }
    // Block the stop signals in every thread (the server's threads inherit the
    // mask), then wait for one here.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    sensecf::testing::FakeOpenAi fake(options.fake);
    sensecf::testing::LoopbackHttpServer server(fake.handler(), options.port);
    if (!options.port_file.empty()) write_port_file(options.port_file, server.port());
    std::cerr << "listening on 127.0.0.1:" << server.port() << std::endl;

    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    server.stop();
    std::cerr << "openai_test_server: signal " << signal_number << ", stopped after " << fake.n_chat_requests()
              << " chat requests" << std::endl;
    return 0;
  } catch (const sensecf::Error& e) {
    std::cerr << "openai_test_server: " << e.what() << (e.hint().empty() ? "" : " (" + e.hint() + ")") << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "openai_test_server: " << e.what() << std::endl;
    return 1;
  }
}
