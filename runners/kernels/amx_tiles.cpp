#include "runners/kernels/amx_tiles.h"

#ifdef EMBEVAL_AMX_BUILD
#include <cstdio>

#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace embeval {

bool amx_tile_permission() {
#if defined(EMBEVAL_AMX_BUILD) && defined(EMBEVAL_AMX_EMULATE)
  static const bool granted = [] {
    std::fprintf(stderr, "embeval: AMX instructions run on a software model (an EMBEVAL_AMX_EMULATE build): "
                         "results are checked, timings mean nothing\n");
    return true;
  }();
  return granted;
#elif defined(EMBEVAL_AMX_BUILD)
  static const bool granted = [] {
    if (!__builtin_cpu_supports("amx-tile")) return false;
    constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
  }();
  return granted;
#else
  return false;
#endif
}

bool cpu_has_amx_bf16() {
#if defined(EMBEVAL_AMX_BUILD) && defined(EMBEVAL_AMX_EMULATE)
  return true;
#elif defined(EMBEVAL_AMX_BUILD)
  return __builtin_cpu_supports("amx-bf16");
#else
  return false;
#endif
}

bool cpu_has_amx_int8() {
#if defined(EMBEVAL_AMX_BUILD) && defined(EMBEVAL_AMX_EMULATE)
  return true;
#elif defined(EMBEVAL_AMX_BUILD)
  return __builtin_cpu_supports("amx-int8");
#else
  return false;
#endif
}

}  // namespace embeval
