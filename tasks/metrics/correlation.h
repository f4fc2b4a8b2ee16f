#pragma once
// Pearson and Spearman correlation as scipy.stats.pearsonr / spearmanr
// compute them (MTEB's STS scores), in double precision.
//
// Undefined cases return NaN, as scipy does: fewer than two points, or an
// input that is constant (every value equal). scipy.stats.pearsonr raises
// instead of returning NaN for n < 2; a task never has fewer than one pair,
// and NaN is what a caller reports (as null) either way.
#include <cstddef>
#include <vector>

namespace embeval::metrics {

// 1-based ranks with ties given the mean of the positions they span, as
// scipy.stats.rankdata(method="average"): {10, 20, 20, 5} -> {2, 3.5, 3.5, 1}.
std::vector<double> average_ranks(const double* x, size_t n);

// r = sum(xm * ym) / (|xm| |ym|) on mean-centred inputs, clipped to [-1, 1].
// n == 2 gives exactly sign(dx) * sign(dy), as scipy special-cases it.
double pearson(const double* x, const double* y, size_t n);

// Pearson's r of the average ranks, evaluated the way np.corrcoef does inside
// spearmanr (covariances scaled by 1/(n-1), divided by each standard
// deviation in turn). Ranks are multiples of 1/2, so every sum is exact (for
// n below ~300,000) and the result equals scipy's bit for bit.
double spearman(const double* x, const double* y, size_t n);

}  // namespace embeval::metrics
