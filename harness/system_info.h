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
// When process `pid` started, in clock ticks since boot (/proc/PID/stat field
// 22): with the pid it names a process even after the pid is reused.
// nullopt when no such process runs.
std::optional<uint64_t> process_start_ticks(int pid);
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
  // Seconds of busy CPU time since boot on the CPUs this process may run on
  // (its affinity mask: on a big shared host, other jobs' cores are not our
  // problem), from /proc/stat; -1 unknown.
  double machine_busy = -1;
  int cpus = 0;                // how many CPUs machine_busy covers
  double process_seconds = 0;  // this process's user + system time, all threads (getrusage)
};
CpuSample cpu_sample();
// From the counters of a /proc/stat "cpu" or "cpuN" line (user nice system
// idle iowait irq softirq steal ...), the busy seconds: everything but idle
// and iowait; -1 for any other line. *cpu gets N, or -1 for the "cpu" total.
double busy_seconds_of_stat_line(const std::string& line, double ticks_per_second, int* cpu = nullptr);
// The share (0-1) of this process's CPUs that anything else kept busy
// between two samples (other processes, steal); nullopt when /proc/stat is
// unreadable or the samples are under half a second apart (the counters
// tick every 10 ms: a 0.1 s interval on one CPU reads in steps of 10%).
std::optional<double> background_cpu_share(const CpuSample& before, const CpuSample& after);
// From this share on, runs and reports say the timings were taken on a busy
// machine (below it: the odd daemon and tick jitter). A quarter: one
// competing process on a 2-CPU run already halves an OpenMP encoder's speed.
constexpr double BUSY_CPU_SHARE = 0.25;

}  // namespace embeval
