#pragma once
// What embeval's AMX kernels (cpu_attention.h, amx_s8_gemm.h) share: the
// build guard, LDTILECFG's operand and the process's permission to use the
// tile state.
#include <cstdint>

// GCC's AMX intrinsics (inline assembly behind macros) arrived in GCC 11;
// the tile state needs Linux's permission call. Elsewhere the kernels are
// absent and their callers run the oneDNN forms.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define EMBEVAL_AMX_BUILD 1
#endif

namespace embeval {

// x rounded up to a multiple of m (tiles and blocks pad to whole ones).
constexpr int64_t amx_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// True once Linux has granted this process the AMX tile data state (>= 5.16
// gives it only when asked: arch_prctl ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA); asked once per process. False where the build has no
// AMX kernels or the CPU lacks AMX-TILE.
bool amx_tile_permission();

#ifdef EMBEVAL_AMX_BUILD
// LDTILECFG's 64-byte operand (Intel SDM vol. 1, 3.2 "AMX"): palette 1,
// bytes per row and rows of each of the 8 tiles. The kernels use every
// tile as 16 rows of 64 bytes (all16x64() sets that).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
  static TileConfig all16x64() {
    TileConfig c;
    for (int i = 0; i < 8; ++i) {
      c.colsb[i] = 64;
      c.rows[i] = 16;
    }
    return c;
  }
};
#endif

}  // namespace embeval
