#include "runners/kernels/amx_emulation.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace embeval::amx_emulation {

namespace {

constexpr int TILES = 8, MAX_ROWS = 16, MAX_COLSB = 64;

// One thread's tile architectural state (the tile registers and TILECFG are
// per thread on the hardware too: XSAVE state).
struct State {
  bool configured = false;
  uint8_t rows[TILES] = {};
  uint16_t colsb[TILES] = {};
  alignas(64) uint8_t data[TILES][MAX_ROWS][MAX_COLSB] = {};
};
thread_local State state;
std::atomic<uint64_t> executed{0};
void count() { executed.fetch_add(1, std::memory_order_relaxed); }

// exception: what the hardware raises, or null for the model's own check.
[[noreturn]] void fault(const char* instruction, const char* exception, const char* why, int tile = -1) {
  char where[24] = "";
  if (tile >= 0) std::snprintf(where, sizeof where, " on tmm%d", tile);
  std::fprintf(stderr, "AMX emulation: %s%s: %s (%s%s)\n", instruction, where, why,
               exception ? "the hardware raises " : "the model's own check", exception ? exception : "");
  std::abort();
}

// What every tile instruction but LDTILECFG needs (SDM exception classes
// AMX-E3 to AMX-E5): a loaded configuration, a tile register that exists,
// and, for this model, a tile the configuration gives a shape (the kernels
// never use an unconfigured one; its use is a bug even where the hardware
// would quietly read zeros).
void check_tile(const char* instruction, int tile) {
  if (!state.configured) fault(instruction, "#UD", "no tile configuration loaded (TILES_CONFIGURED = 0)");
  if (tile < 0 || tile >= TILES) fault(instruction, "#UD", "no such tile register", tile);
  if (state.rows[tile] == 0) fault(instruction, nullptr, "the loaded configuration gives this tile no rows", tile);
}

// TDPBF16PS's and TDPB*D's shape rules (SDM, exception class AMX-E4).
void check_product(const char* instruction, int dst, int a, int b) {
  check_tile(instruction, dst);
  check_tile(instruction, a);
  check_tile(instruction, b);
  if (dst == a || dst == b || a == b) fault(instruction, "#UD", "two operands are the same tile register");
  const State& s = state;
  if (s.colsb[dst] % 4 || s.colsb[a] % 4 || s.colsb[b] % 4)
    fault(instruction, "#UD", "a tile's bytes per row is not a multiple of 4");
  if (s.rows[a] != s.rows[dst]) fault(instruction, "#UD", "src1.rows != srcdest.rows", a);
  if (s.colsb[a] / 4 != s.rows[b]) fault(instruction, "#UD", "src1.colsb / 4 != src2.rows", b);
  if (s.colsb[b] != s.colsb[dst]) fault(instruction, "#UD", "src2.colsb != srcdest.colsb", b);
}

// zero_upper_rows and the zeroed bytes past colsb (write_row_and_zero).
void zero_unused(int tile) {
  State& s = state;
  for (int r = 0; r < MAX_ROWS; ++r)
    std::memset(s.data[tile][r] + (r < s.rows[tile] ? s.colsb[tile] : 0), 0,
                MAX_COLSB - (r < s.rows[tile] ? s.colsb[tile] : 0));
}

// make_fp32 (a bf16 is the upper half of an fp32) with DAZ: a denormal
// input reads as a zero of its sign.
float bf16_daz(uint16_t x) {
  uint32_t bits = static_cast<uint32_t>(x) << 16;
  if ((bits & 0x7f800000u) == 0) bits &= 0x80000000u;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float daz(float f) { return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f; }
float ftz(float f) { return daz(f); }

}  // namespace

void ldtilecfg(const void* config) {
  uint8_t c[64];
  std::memcpy(c, config, 64);
  if (c[0] == 0) {  // palette 0: the initial state
    tilerelease();
    return;
  }
  count();
  if (c[0] != 1) fault("LDTILECFG", "#GP", "palette is not 0 or 1 (the only palettes of the first AMX CPUs)");
  if (c[1] != 0) fault("LDTILECFG", nullptr, "start_row is not 0 (restarting an interrupted load is not modelled)");
  for (int i = 2; i < 16; ++i)
    if (c[i]) fault("LDTILECFG", "#GP", "reserved bytes 2-15 are not zero");
  uint8_t rows[TILES] = {};
  uint16_t colsb[TILES] = {};
  for (int t = 0; t < 16; ++t) {
    uint16_t cb;
    std::memcpy(&cb, c + 16 + 2 * t, 2);
    const uint8_t r = c[48 + t];
    if (t >= TILES) {
      if (cb || r) fault("LDTILECFG", "#GP", "a tile past tmm7 has a shape");
      continue;
    }
    if (r > MAX_ROWS || cb > MAX_COLSB) fault("LDTILECFG", "#GP", "a tile is larger than 16 rows x 64 bytes");
    if ((r == 0) != (cb == 0)) fault("LDTILECFG", "#GP", "a tile has rows but no bytes, or bytes but no rows");
    rows[t] = r;
    colsb[t] = cb;
  }
  std::memcpy(state.rows, rows, sizeof rows);
  std::memcpy(state.colsb, colsb, sizeof colsb);
  std::memset(state.data, 0, sizeof state.data);  // a new configuration zeroes the tiles
  state.configured = true;
}

void tilerelease() {
  count();
  std::memset(state.rows, 0, sizeof state.rows);
  std::memset(state.colsb, 0, sizeof state.colsb);
  std::memset(state.data, 0, sizeof state.data);
  state.configured = false;
}

void tileloadd(int tile, const void* base, long stride) {
  count();
  check_tile("TILELOADD", tile);
  const auto* p = static_cast<const uint8_t*>(base);
  for (int r = 0; r < state.rows[tile]; ++r) std::memcpy(state.data[tile][r], p + r * stride, state.colsb[tile]);
  zero_unused(tile);
}

void tilestored(int tile, void* base, long stride) {
  count();
  check_tile("TILESTORED", tile);
  auto* p = static_cast<uint8_t*>(base);
  for (int r = 0; r < state.rows[tile]; ++r) std::memcpy(p + r * stride, state.data[tile][r], state.colsb[tile]);
}

void tilezero(int tile) {
  count();
  check_tile("TILEZERO", tile);
  std::memset(state.data[tile], 0, sizeof state.data[tile]);
}

void tdpbf16ps(int dst, int a, int b) {
  count();
  check_product("TDPBF16PS", dst, a, b);
  State& s = state;
  const int rows = s.rows[dst], pairs = s.colsb[a] / 4, cols = s.colsb[dst] / 4;
  for (int m = 0; m < rows; ++m) {
    // Two fp32 accumulators a column (the even and the odd element of each
    // pair), FMA with DAZ, FTZ and round-to-nearest-even; then their sum is
    // added to the destination.
    float temp[2 * MAX_COLSB / 4] = {};
    uint16_t am[MAX_COLSB / 2];
    std::memcpy(am, s.data[a][m], sizeof am);
    for (int k = 0; k < pairs; ++k) {
      uint16_t bk[MAX_COLSB / 2];
      std::memcpy(bk, s.data[b][k], sizeof bk);
      for (int n = 0; n < cols; ++n) {
        temp[2 * n] = ftz(std::fma(bf16_daz(am[2 * k]), bf16_daz(bk[2 * n]), temp[2 * n]));
        temp[2 * n + 1] = ftz(std::fma(bf16_daz(am[2 * k + 1]), bf16_daz(bk[2 * n + 1]), temp[2 * n + 1]));
      }
    }
    float c[MAX_COLSB / 4];
    std::memcpy(c, s.data[dst][m], sizeof c);
    for (int n = 0; n < cols; ++n) c[n] = ftz(daz(c[n]) + ftz(temp[2 * n] + temp[2 * n + 1]));
    std::memcpy(s.data[dst][m], c, sizeof c);
  }
  zero_unused(dst);
}

void tdpb_d(int dst, int a, int b, bool a_signed, bool b_signed, const char* name) {
  count();
  check_product(name, dst, a, b);
  State& s = state;
  const int rows = s.rows[dst], quads = s.colsb[a] / 4, cols = s.colsb[dst] / 4;
  const auto byte = [](uint8_t v, bool is_signed) {
    return is_signed ? static_cast<int32_t>(static_cast<int8_t>(v)) : static_cast<int32_t>(v);
  };
  for (int m = 0; m < rows; ++m) {
    uint32_t c[MAX_COLSB / 4];  // the sums wrap modulo 2^32, as the hardware's dwords do
    std::memcpy(c, s.data[dst][m], sizeof c);
    for (int k = 0; k < quads; ++k)
      for (int n = 0; n < cols; ++n) {
        int32_t dot = 0;  // at most 4 x 255 x 255: no overflow
        for (int i = 0; i < 4; ++i)
          dot += byte(s.data[a][m][4 * k + i], a_signed) * byte(s.data[b][k][4 * n + i], b_signed);
        c[n] += static_cast<uint32_t>(dot);
      }
    std::memcpy(s.data[dst][m], c, sizeof c);
  }
  zero_unused(dst);
}

uint64_t instructions() { return executed.load(std::memory_order_relaxed); }

}  // namespace embeval::amx_emulation
