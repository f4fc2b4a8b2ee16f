#include "runners/kernels/amx_tiles.h"

#ifdef EMBEVAL_AMX_BUILD
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace embeval {

bool amx_tile_permission() {
#ifdef EMBEVAL_AMX_BUILD
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

}  // namespace embeval
