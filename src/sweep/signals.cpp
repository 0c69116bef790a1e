// Stop flag set from signal handlers (async-signal-safe: lock-free atomics only).
#include "sensecf/sweep/signals.h"

#include <csignal>
#include <initializer_list>

namespace sensecf::sweep {
namespace {
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the stop flag is set from a signal handler");

extern "C" void on_stop_signal(int signal) {
  g_signal.store(signal);
  g_stop.store(true);
}
}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int s : {SIGTERM, SIGUSR1, SIGINT}) sigaction(s, &action, nullptr);
}

const std::atomic<bool>& stop_flag() { return g_stop; }
bool stop_requested() { return g_stop.load(); }
int stop_signal() { return g_signal.load(); }
void request_stop(int signal) { on_stop_signal(signal); }

}  // namespace sensecf::sweep
