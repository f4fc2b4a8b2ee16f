#include "runners/kernels/amx_tiles.h"

#if defined(EMBEVAL_AMX_BUILD) && defined(EMBEVAL_AMX_EMULATE)
#include <cstdio>
#elif defined(EMBEVAL_AMX_BUILD)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace embeval {

#if defined(EMBEVAL_AMX_BUILD) && defined(EMBEVAL_AMX_EMULATE)

// The tiles are amx_emulation.h's model: present on any CPU, no permission to ask.
bool amx_tile_permission() {
  static const bool said = [] {
    std::fprintf(stderr, "embeval: AMX instructions run on a software model (an EMBEVAL_AMX_EMULATE build): "
                         "results are checked, timings mean nothing\n");
    return true;
  }();
  return said;
}
bool cpu_has_amx_bf16() { return true; }
bool cpu_has_amx_int8() { return true; }

#elif defined(EMBEVAL_AMX_BUILD)

bool amx_tile_permission() {
  static const bool granted = [] {
    if (!__builtin_cpu_supports("amx-tile")) return false;
    constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
  }();
  return granted;
}
bool cpu_has_amx_bf16() { return __builtin_cpu_supports("amx-bf16"); }
bool cpu_has_amx_int8() { return __builtin_cpu_supports("amx-int8"); }

#else

bool amx_tile_permission() { return false; }
bool cpu_has_amx_bf16() { return false; }
bool cpu_has_amx_int8() { return false; }

#endif

}  // namespace embeval
