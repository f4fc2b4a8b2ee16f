#pragma once
// A software model of the AMX tile unit, for testing the AMX kernels on a
// CPU without AMX. In a build configured with -DEMBEVAL_AMX_EMULATE=ON
// (scripts/portability/amx_emulation_check.sh makes one), amx_tiles.h
// replaces GCC's tile intrinsics (_tile_loadconfig, _tile_loadd,
// _tile_dpbf16ps, ...) by macros that call the functions below, so the
// kernels' own source runs unchanged, instruction by instruction, on the
// model. Never in a product build: an emulated tile instruction is
// thousands of scalar operations, so timings from such a build mean
// nothing. The model itself is plain C++, built and tested
// (tests/test_amx_emulation.cpp) in every build. Each function is a
// transcription of the instruction's "Operation" section in the Intel SDM
// (vol. 2, LDTILECFG, TILELOADD, TILESTORED, TILEZERO, TILERELEASE,
// TDPBF16PS, TDPBSSD/TDPBSUD/TDPBUSD/TDPBUUD) and checks the conditions under
// which the hardware faults (#GP for a bad tile configuration, #UD for
// tiles that are unconfigured or whose shapes do not fit the product):
// there the model prints the instruction and the reason on stderr and
// aborts, as the real instruction would kill the process. Its memory
// accesses are plain loads and stores of exactly the bytes the instruction
// touches, so a sanitizer build sees every out-of-bounds tile load.
//
// What the model cannot tell: timing, and TDPBF16PS's exact rounding where
// the hardware's order of additions differs from the SDM's pseudocode
// (the kernels' tests compare with float64 products within bounds that
// hold for any order, or use values whose sums are exact).
#include <cstdint>

namespace embeval::amx_emulation {

void ldtilecfg(const void* config);
void tilerelease();
void tileloadd(int tile, const void* base, long stride);
void tilestored(int tile, void* base, long stride);
void tilezero(int tile);
void tdpbf16ps(int dst, int a, int b);
// Signedness of a's and b's bytes: TDPBSSD is (true, true), TDPBUSD (false, true).
void tdpb_d(int dst, int a, int b, bool a_signed, bool b_signed, const char* name);

// Tile instructions run so far, all threads (tests check that the kernels ran on the model).
uint64_t instructions();

}  // namespace embeval::amx_emulation
