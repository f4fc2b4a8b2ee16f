#pragma once
// Facts about the machine and process that every run records.
#include <cstdint>
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

}  // namespace embeval
