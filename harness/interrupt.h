#pragma once
// SIGINT / SIGTERM for long runs. The first signal only sets a flag; the
// work checks it at safe points (between batches, between tasks) and throws
// Interrupted, so the current task is abandoned, nothing half-written is
// recorded and the run is marked interrupted. A second signal ends the
// process at once (the default action), for a run that does not stop.
#include <stdexcept>
#include <string>

namespace embeval {

class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signal);
  int signal() const { return signal_; }

 private:
  int signal_;
};

// Blocks SIGINT and SIGTERM in the calling thread (and so in the threads it
// starts later) and starts a thread that takes them (idempotent). Call it
// before any worker thread exists: a thread started earlier could still be
// handed the signal. Without it the flag never rises.
void install_interrupt_handlers();
// The signal received (SIGINT, SIGTERM), 0 when none.
int interrupt_signal();
// Throws Interrupted when a signal was received.
void check_interrupt();

}  // namespace embeval
