#pragma once
// Facts about the machine and process that every run records.
#include <cstdint>
#include <optional>
#include <string>

namespace embeval {

std::string host_name();
std::string os_description();   // "Linux 6.1.0 x86_64"
std::string cpu_model();        // /proc/cpuinfo "model name"
int64_t hardware_threads();
// Peak resident set size of this process in bytes (VmHWM), -1 if unknown.
int64_t peak_rss_bytes();
// Resets the peak RSS counter (Linux >= 4.0, /proc/self/clear_refs), so the
// next peak_rss_bytes() measures one task; false when the kernel refuses.
bool reset_peak_rss();
// BLAS library libtorch resolves through libblas.so.3 (reference BLAS is ~50x
// slower than OpenBLAS); read from the process's mapped libraries.
std::string blas_library();
// The kernel family OpenBLAS chose at load ("SkylakeX", "Haswell", "Prescott"), "" without OpenBLAS.
std::string openblas_core();
// Non-empty when OpenBLAS fell back to a generic kernel on a CPU with AVX2: what to do about it.
std::string blas_warning();

// CPU time counters at one instant, for how busy the machine was around a
// measurement: on a shared machine other processes (or the hypervisor
// taking vCPUs: steal time) slow a timed task down, badly so for OpenMP
// threads waiting on each other at every barrier (a tiny model's batch-1
// latency went up 100x with one competing process on 2 vCPUs).
struct CpuSample {
  double wall_seconds = 0;     // steady clock
  double machine_busy = -1;    // seconds of busy CPU time over all CPUs since boot (/proc/stat), -1 unknown
  double process_seconds = 0;  // this process's user + system time, all threads (getrusage)
};
CpuSample cpu_sample();
// From the counters of a /proc/stat "cpu" line (user nice system idle iowait
// irq softirq steal ...), the busy seconds: everything but idle and iowait.
double busy_seconds_of_stat_line(const std::string& line, double ticks_per_second);
// Average number of CPUs kept busy by anything other than this process
// between two samples (steal included), >= 0; nullopt when /proc/stat is
// unreadable or no time passed.
std::optional<double> background_load(const CpuSample& before, const CpuSample& after);
// From this background load on, runs and reports say the timings were taken
// on a busy machine (below it: the odd daemon and tick jitter).
constexpr double BUSY_MACHINE_LOAD = 0.5;

}  // namespace embeval
