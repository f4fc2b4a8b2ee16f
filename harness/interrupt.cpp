#include "harness/interrupt.h"

#include <csignal>
#include <cstring>

#include <atomic>
#include <mutex>
#include <thread>

#include <pthread.h>

namespace embeval {
namespace {

std::atomic<int> g_signal{0};

}  // namespace

Interrupted::Interrupted(int signal)
    : std::runtime_error(std::string("interrupted by ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT")),
      signal_(signal) {}

void install_interrupt_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    // No handler runs on a working thread: the signals are blocked here, so
    // in every thread started from now on, and one thread of our own takes
    // them with sigwait. Why: a handler's frame is pushed below the stack
    // pointer of whichever thread the kernel picks, usually the main thread,
    // which may be inside a oneDNN kernel; on the AMX Xeon of session 12 a
    // SIGINT there corrupted the heap in about half the runs of the bundled
    // model ("corrupted size vs. prev_size", or a segfault inside
    // dnnl_primitive_execute), and never with the signals taken here.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (g_signal.exchange(sig) != 0) {  // the second one: end the process at once, the default action
          std::signal(sig, SIG_DFL);
          sigset_t one;
          sigemptyset(&one);
          sigaddset(&one, sig);
          pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
          std::raise(sig);
        }
      }
    }).detach();
  });
}

int interrupt_signal() { return g_signal.load(); }

void check_interrupt() {
  if (const int s = g_signal.load()) throw Interrupted(s);
}

}  // namespace embeval
