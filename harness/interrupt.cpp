#include "harness/interrupt.h"

#include <csignal>
#include <cstring>

#include <atomic>

namespace embeval {
namespace {

std::atomic<int> g_signal{0};

extern "C" void on_signal(int sig) {
  if (g_signal.exchange(sig) != 0) {  // the second one: give up at once
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

}  // namespace

Interrupted::Interrupted(int signal)
    : std::runtime_error(std::string("interrupted by ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT")),
      signal_(signal) {}

void install_interrupt_handlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int interrupt_signal() { return g_signal.load(); }

void check_interrupt() {
  if (const int s = g_signal.load()) throw Interrupted(s);
}

}  // namespace embeval
