#include "harness/system_info.h"

#include <dlfcn.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
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

}  // namespace embeval
