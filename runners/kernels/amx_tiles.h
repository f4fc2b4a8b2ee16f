#pragma once
// What embeval's AMX kernels (cpu_attention.h, amx_s8_gemm.h,
// amx_bf16_gemm.h) share: the build guard, LDTILECFG's operand, the
// process's permission to use the tile state and, in a test build, the
// software model their tile instructions then run on.
#include <cstdint>

// GCC's AMX intrinsics (inline assembly behind macros) arrived in GCC 11;
// the tile state needs Linux's permission call. Elsewhere the kernels are
// absent and their callers run the oneDNN forms.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define EMBEVAL_AMX_BUILD 1
#endif

// A test build (-DEMBEVAL_AMX_EMULATE=ON, or CMakeLists.txt's
// embeval_amx_model objects) runs the tile instructions on a software model
// (amx_emulation.h): the kernels then run on any CPU with AVX512-BF16.
#if defined(EMBEVAL_AMX_EMULATE) && defined(EMBEVAL_AMX_BUILD)
#include "runners/kernels/amx_emulation.h"
#include <immintrin.h>  // first: what follows replaces its definitions

#undef _tile_loadd
#undef _tile_stream_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbf16ps
#undef _tile_dpbssd
#undef _tile_dpbsud
#undef _tile_dpbusd
#undef _tile_dpbuud
// _tile_loadconfig and _tile_release are inline functions in GCC's header:
// a function-like macro defined after them shadows every later call.
#define _tile_loadconfig(config) ::embeval::amx_emulation::ldtilecfg(config)
#define _tile_release() ::embeval::amx_emulation::tilerelease()
#define _tile_loadd(tile, base, stride) ::embeval::amx_emulation::tileloadd(tile, base, stride)
#define _tile_stream_loadd(tile, base, stride) ::embeval::amx_emulation::tileloadd(tile, base, stride)
#define _tile_stored(tile, base, stride) ::embeval::amx_emulation::tilestored(tile, base, stride)
#define _tile_zero(tile) ::embeval::amx_emulation::tilezero(tile)
#define _tile_dpbf16ps(dst, a, b) ::embeval::amx_emulation::tdpbf16ps(dst, a, b)
#define _tile_dpbssd(dst, a, b) ::embeval::amx_emulation::tdpb_d(dst, a, b, true, true, "TDPBSSD")
#define _tile_dpbsud(dst, a, b) ::embeval::amx_emulation::tdpb_d(dst, a, b, true, false, "TDPBSUD")
#define _tile_dpbusd(dst, a, b) ::embeval::amx_emulation::tdpb_d(dst, a, b, false, true, "TDPBUSD")
#define _tile_dpbuud(dst, a, b) ::embeval::amx_emulation::tdpb_d(dst, a, b, false, false, "TDPBUUD")
#endif

namespace embeval {

// x rounded up to a multiple of m (tiles and blocks pad to whole ones).
constexpr int64_t amx_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// True once Linux has granted this process the AMX tile data state (>= 5.16
// gives it only when asked: arch_prctl ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA); asked once per process. False where the build has no
// AMX kernels or the CPU lacks AMX-TILE.
bool amx_tile_permission();

// Whether the CPU has AMX's bf16 and int8 products (CPUID, as
// __builtin_cpu_supports reads it). In an EMBEVAL_AMX_EMULATE build: true,
// and amx_tile_permission() too, after a line on stderr saying so.
bool cpu_has_amx_bf16();
bool cpu_has_amx_int8();

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
