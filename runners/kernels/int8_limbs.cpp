#include "runners/kernels/int8_limbs.h"

#include <algorithm>
#include <cmath>

#include "runners/kernels/cpu_dispatch.h"
#include "runners/kernels/vec_math.h"

namespace embeval {
namespace {
typedef EmbevalFloats16 LimbF16;
typedef int32_t LimbI16 __attribute__((vector_size(64)));
typedef int8_t LimbB16 __attribute__((vector_size(16)));
}  // namespace

// max |x[k]| over a row of n, NaN when an element is NaN or infinite (v * 0
// is NaN exactly then, and the sum of such probes stays NaN).
EMBEVAL_CLONES float limb_row_absmax(const float* __restrict__ x, int64_t n) {
  LimbF16 m = {}, probe = {};
  const LimbI16 abs_mask = LimbI16{} + 0x7fffffff;
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    LimbF16 v;
    __builtin_memcpy(&v, x + k, sizeof v);
    const LimbF16 a = reinterpret_cast<LimbF16>(reinterpret_cast<LimbI16>(v) & abs_mask);
    m = m > a ? m : a;
    probe += v * 0.f;
  }
  float r = 0, p = 0;
  for (; k < n; ++k) {
    r = std::max(r, std::fabs(x[k]));
    p += x[k] * 0.f;
  }
  const float lanes_max = embeval_hmax16(m);
  r = r > lanes_max ? r : lanes_max;
  return p + embeval_hsum16(probe) == 0 ? r : NAN;
}

// The limbs of one row of n values at step `step` into a1, a2, a3; each
// limb's sum into sums[0..2]. Adding and subtracting 1.5 * 2^23 rounds to the
// nearest integer (ties to even); every limb is clamped to +-127, which
// only the rounding of x / step to 127.00001 could reach.
EMBEVAL_CLONES void split_limbs(const float* __restrict__ x, int64_t n, float step, int8_t* __restrict__ a1,
                                int8_t* __restrict__ a2, int8_t* __restrict__ a3, int32_t* sums) {
  const float magic = 12582912.f;
  LimbI16 s1 = {}, s2 = {}, s3 = {};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    LimbF16 u;
    __builtin_memcpy(&u, x + k, sizeof u);
    u = u / step;
    LimbF16 r1 = (u + magic) - magic;
    r1 = r1 > 127.f ? LimbF16{} + 127.f : r1;
    r1 = r1 < -127.f ? LimbF16{} - 127.f : r1;
    const LimbF16 v = (u - r1) * LIMB_BASE;
    LimbF16 r2 = (v + magic) - magic;
    r2 = r2 > 127.f ? LimbF16{} + 127.f : r2;
    r2 = r2 < -127.f ? LimbF16{} - 127.f : r2;
    const LimbF16 w = (v - r2) * LIMB_BASE;
    LimbF16 r3 = (w + magic) - magic;
    r3 = r3 > 127.f ? LimbF16{} + 127.f : r3;
    r3 = r3 < -127.f ? LimbF16{} - 127.f : r3;
    const LimbI16 i1 = __builtin_convertvector(r1, LimbI16), i2 = __builtin_convertvector(r2, LimbI16),
                  i3 = __builtin_convertvector(r3, LimbI16);
    s1 += i1;
    s2 += i2;
    s3 += i3;
    const LimbB16 b1 = __builtin_convertvector(i1, LimbB16), b2 = __builtin_convertvector(i2, LimbB16),
                  b3 = __builtin_convertvector(i3, LimbB16);
    __builtin_memcpy(a1 + k, &b1, sizeof b1);
    __builtin_memcpy(a2 + k, &b2, sizeof b2);
    __builtin_memcpy(a3 + k, &b3, sizeof b3);
  }
  int32_t t1 = 0, t2 = 0, t3 = 0;
  for (; k < n; ++k) {
    const float u = x[k] / step;
    const float r1 = std::clamp((u + magic) - magic, -127.f, 127.f);
    const float v = (u - r1) * LIMB_BASE;
    const float r2 = std::clamp((v + magic) - magic, -127.f, 127.f);
    const float w = (v - r2) * LIMB_BASE;
    const float r3 = std::clamp((w + magic) - magic, -127.f, 127.f);
    a1[k] = static_cast<int8_t>(r1);
    a2[k] = static_cast<int8_t>(r2);
    a3[k] = static_cast<int8_t>(r3);
    t1 += a1[k];
    t2 += a2[k];
    t3 += a3[k];
  }
  for (int l = 0; l < 16; ++l) t1 += s1[l], t2 += s2[l], t3 += s3[l];
  sums[0] = t1;
  sums[1] = t2;
  sums[2] = t3;
}

}  // namespace embeval
