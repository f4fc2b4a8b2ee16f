#include "harness/system_info.h"

#include <dlfcn.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <set>
#include <thread>

namespace embeval {

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string os_description() {
  struct utsname u;
  if (uname(&u) != 0) return "unknown";
  return std::string(u.sysname) + " " + u.release + " " + u.machine;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

int64_t hardware_threads() { return static_cast<int64_t>(std::thread::hardware_concurrency()); }

std::optional<uint64_t> process_start_ticks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // count fields after the last ')'; starttime is field 22 overall.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field)) return std::nullopt;
  try {
    return std::stoull(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

int64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  return static_cast<bool>(out.flush());
}

std::string blas_library() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  std::set<std::string> found;
  while (std::getline(in, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.find("libblas") != std::string::npos || path.find("openblas") != std::string::npos ||
        path.find("libmkl") != std::string::npos || path.find("libdnnl") != std::string::npos)
      found.insert(path);
  }
  std::string out;
  for (const auto& p : found) out += (out.empty() ? "" : ", ") + p;
  if (out.empty()) return "none loaded";
  const std::string core = openblas_core();
  return core.empty() ? out : out + " (OpenBLAS core " + core + ")";
}

std::string openblas_core() {
  // Looked up at run time: the binaries do not link OpenBLAS themselves, libtorch loads it.
  using CoreName = char* (*)();
  auto fn = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!fn) return "";
  const char* name = fn();
  return name ? name : "";
}

std::string blas_warning() {
  const std::string core = openblas_core();
  // OpenBLAS's kernels without AVX2; a CPU that has AVX2 but gets one of
  // these was not recognised (OpenBLAS 0.3.21 on Sapphire / Emerald Rapids).
  static const std::set<std::string> generic = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                                "Katmai",   "Coppermine", "Northwood", "Banias", "Atom"};
  if (!generic.count(core)) return "";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  bool avx2 = false, avx512 = false;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    avx2 = line.find(" avx2") != std::string::npos;
    avx512 = line.find(" avx512f") != std::string::npos;
    break;
  }
  if (!avx2) return "";
  return "OpenBLAS runs its generic " + core + " kernel on this CPU (it does not recognise the model); matrix " +
         "products outside the encoder (retrieval top-k, classification) are ~5x slow. Set OPENBLAS_CORETYPE=" +
         (avx512 ? "SkylakeX" : "Haswell") + " in the environment to fix it";
}

double busy_seconds_of_stat_line(const std::string& line, double ticks_per_second, int* cpu) {
  std::istringstream in(line);
  std::string label;
  in >> label;
  if (label.rfind("cpu", 0) != 0 || ticks_per_second <= 0) return -1;
  int index = -1;
  if (label.size() > 3) {
    if (label.find_first_not_of("0123456789", 3) != std::string::npos || label.size() > 9) return -1;
    index = std::stoi(label.substr(3));
  }
  // user nice system idle iowait irq softirq steal [guest guest_nice]: guest
  // time is already inside user / nice, so the first eight are the total.
  double v[8] = {0};
  int n = 0;
  while (n < 8 && in >> v[n]) ++n;
  if (n < 4) return -1;
  if (cpu) *cpu = index;
  double busy = 0;
  for (int i = 0; i < n; ++i)
    if (i != 3 && i != 4) busy += v[i];  // not idle, not iowait
  return busy / ticks_per_second;
}

CpuSample cpu_sample() {
  CpuSample s;
  s.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  cpu_set_t mask;
  CPU_ZERO(&mask);
  const bool have_mask = sched_getaffinity(0, sizeof(mask), &mask) == 0;
  std::ifstream in("/proc/stat");
  double total = -1, ours = 0;
  for (std::string line; std::getline(in, line) && line.rfind("cpu", 0) == 0;) {
    int cpu = -1;
    const double busy = busy_seconds_of_stat_line(line, ticks, &cpu);
    if (busy < 0) continue;
    if (cpu < 0) {
      total = busy;
    } else if (have_mask && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &mask)) {
      ours += busy;
      ++s.cpus;
    }
  }
  if (s.cpus == 0) {  // no per-CPU lines for our mask: the machine's total
    s.machine_busy = total;
    s.cpus = static_cast<int>(hardware_threads());
  } else {
    s.machine_busy = ours;
  }
  struct rusage u;
  if (getrusage(RUSAGE_SELF, &u) == 0)
    s.process_seconds = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
                        static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  return s;
}

std::optional<double> background_cpu_share(const CpuSample& before, const CpuSample& after) {
  const double wall = after.wall_seconds - before.wall_seconds;
  if (before.machine_busy < 0 || after.machine_busy < 0 || wall < 0.5 || after.cpus <= 0) return std::nullopt;
  const double others = (after.machine_busy - before.machine_busy) - (after.process_seconds - before.process_seconds);
  // Tick granularity (10 ms per CPU) makes short intervals jitter around 0.
  return std::clamp(others / (wall * after.cpus), 0.0, 1.0);
}

}  // namespace embeval
