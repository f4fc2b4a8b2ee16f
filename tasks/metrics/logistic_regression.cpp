#include "tasks/metrics/logistic_regression.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <cfloat>
#include <cmath>
#include <stdexcept>

#include "tasks/metrics/numpy_sum.h"

namespace embeval::metrics {
namespace {

// ---------------------------------------------------------------------------
// Vector helpers. lbfgsb.f mixes BLAS calls (ddot on length-n vectors) with
// its own Fortran loops; the loops are ported with the same order of
// additions, the long ddots go to the BLAS numpy/scipy use, through ATen.
// ---------------------------------------------------------------------------

at::Tensor wrap(const double* p, at::IntArrayRef sizes) {
  return at::from_blob(const_cast<double*>(p), sizes, at::TensorOptions().dtype(at::kDouble));
}

double blas_dot(int64_t n, const double* x, const double* y) {
  if (n == 0) return 0.0;
  return at::dot(wrap(x, {n}), wrap(y, {n})).item<double>();
}

// The short ddots inside LINPACK and formk (at most 2m terms). OpenBLAS's
// x86-64 ddot adds its last n mod 16 terms one fused multiply-add at a time
// (checked against np.dot on SkylakeX), so below 16 terms an fma chain gives
// its bits without the cost of a BLAS call per solve step.
double small_dot(int n, const double* x, const double* y) {
  if (n >= 16) return blas_dot(n, x, y);
  double s = 0.0;
  for (int i = 0; i < n; ++i) s = std::fma(y[i], x[i], s);
  return s;
}

// Column-major storage with 1-based indices, so the port reads like the Fortran.
struct FortranMatrix {
  std::vector<double> a;
  int64_t ld = 0;
  void resize(int64_t rows, int64_t cols) {
    ld = rows;
    a.assign(static_cast<size_t>(rows * cols), 0.0);
  }
  double& operator()(int64_t i, int64_t j) { return a[(j - 1) * ld + (i - 1)]; }
};

// LINPACK dpofa: Cholesky factor r (upper triangle, a = r'r) of the leading
// n x n block of a. Returns 0, or the order of the first non-positive minor.
int dpofa(double* a, int64_t lda, int n) {
  auto A = [&](int i, int j) -> double& { return a[(j - 1) * lda + (i - 1)]; };
  for (int j = 1; j <= n; ++j) {
    double s = 0.0;
    for (int k = 1; k <= j - 1; ++k) {
      double t = A(k, j) - small_dot(k - 1, &A(1, k), &A(1, j));
      t = t / A(k, k);
      A(k, j) = t;
      s = s + t * t;
    }
    s = A(j, j) - s;
    if (s <= 0.0) return j;
    A(j, j) = std::sqrt(s);
  }
  return 0;
}

// LINPACK dtrsl: solves t x = b (job 00 lower, 01 upper) or t' x = b (job 10
// lower, 11 upper) in place. Returns 0, or the index of a zero diagonal.
int dtrsl(double* t, int64_t ldt, int n, double* b, int job) {
  auto T = [&](int i, int j) -> double& { return t[(j - 1) * ldt + (i - 1)]; };
  for (int info = 1; info <= n; ++info)
    if (T(info, info) == 0.0) return info;
  int kase = job % 10 != 0 ? 2 : 1;
  if ((job % 100) / 10 != 0) kase += 2;
  switch (kase) {
    case 1:  // t lower, t x = b
      b[0] = b[0] / T(1, 1);
      for (int j = 2; j <= n; ++j) {
        double temp = -b[j - 2];
        for (int i = 0; i < n - j + 1; ++i) b[j - 1 + i] = std::fma(temp, (&T(j, j - 1))[i], b[j - 1 + i]);  // daxpy
        b[j - 1] = b[j - 1] / T(j, j);
      }
      break;
    case 2:  // t upper, t x = b
      b[n - 1] = b[n - 1] / T(n, n);
      for (int jj = 2; jj <= n; ++jj) {
        int j = n - jj + 1;
        double temp = -b[j];
        for (int i = 0; i < j; ++i) b[i] = std::fma(temp, (&T(1, j + 1))[i], b[i]);  // daxpy
        b[j - 1] = b[j - 1] / T(j, j);
      }
      break;
    case 3:  // t lower, t' x = b
      b[n - 1] = b[n - 1] / T(n, n);
      for (int jj = 2; jj <= n; ++jj) {
        int j = n - jj + 1;
        b[j - 1] = b[j - 1] - small_dot(jj - 1, &T(j + 1, j), &b[j]);
        b[j - 1] = b[j - 1] / T(j, j);
      }
      break;
    default:  // t upper, t' x = b
      b[0] = b[0] / T(1, 1);
      for (int j = 2; j <= n; ++j) {
        b[j - 1] = b[j - 1] - small_dot(j - 1, &T(1, j), b);
        b[j - 1] = b[j - 1] / T(j, j);
      }
      break;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// MINPACK-2 dcsrch / dcstep (the copy inside lbfgsb.f): Moré-Thuente line
// search on phi(stp) = f(x + stp d), driven by reverse communication.
// ---------------------------------------------------------------------------

void dcstep(double& stx, double& fx, double& dx, double& sty, double& fy, double& dy, double& stp, double fp,
            double dp, bool& brackt, double stpmin, double stpmax) {
  const double p66 = 0.66;
  double sgnd = dp * (dx / std::fabs(dx));
  double stpf;
  if (fp > fx) {
    // Higher function value: the minimum is bracketed. Take the cubic step
    // if it is closer to stx than the quadratic step, else their average.
    double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
    double s = std::max({std::fabs(theta), std::fabs(dx), std::fabs(dp)});
    double gamma = s * std::sqrt((theta / s) * (theta / s) - (dx / s) * (dp / s));
    if (stp < stx) gamma = -gamma;
    double p = (gamma - dx) + theta;
    double q = ((gamma - dx) + gamma) + dp;
    double r = p / q;
    double stpc = stx + r * (stp - stx);
    double stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
    if (std::fabs(stpc - stx) < std::fabs(stpq - stx))
      stpf = stpc;
    else
      stpf = stpc + (stpq - stpc) / 2.0;
    brackt = true;
  } else if (sgnd < 0.0) {
    // Lower value, derivatives of opposite sign: bracketed. Take the cubic
    // step if it is farther from stp than the secant step.
    double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
    double s = std::max({std::fabs(theta), std::fabs(dx), std::fabs(dp)});
    double gamma = s * std::sqrt((theta / s) * (theta / s) - (dx / s) * (dp / s));
    if (stp > stx) gamma = -gamma;
    double p = (gamma - dp) + theta;
    double q = ((gamma - dp) + gamma) + dx;
    double r = p / q;
    double stpc = stp + r * (stx - stp);
    double stpq = stp + (dp / (dp - dx)) * (stx - stp);
    stpf = std::fabs(stpc - stp) > std::fabs(stpq - stp) ? stpc : stpq;
    brackt = true;
  } else if (std::fabs(dp) < std::fabs(dx)) {
    // Lower value, same sign, decreasing slope magnitude.
    double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
    double s = std::max({std::fabs(theta), std::fabs(dx), std::fabs(dp)});
    double gamma = s * std::sqrt(std::max(0.0, (theta / s) * (theta / s) - (dx / s) * (dp / s)));
    if (stp > stx) gamma = -gamma;
    double p = (gamma - dp) + theta;
    double q = (gamma + (dx - dp)) + gamma;
    double r = p / q;
    double stpc;
    if (r < 0.0 && gamma != 0.0)
      stpc = stp + r * (stx - stp);
    else if (stp > stx)
      stpc = stpmax;
    else
      stpc = stpmin;
    double stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if (brackt) {
      stpf = std::fabs(stpc - stp) < std::fabs(stpq - stp) ? stpc : stpq;
      if (stp > stx)
        stpf = std::min(stp + p66 * (sty - stp), stpf);
      else
        stpf = std::max(stp + p66 * (sty - stp), stpf);
    } else {
      stpf = std::fabs(stpc - stp) > std::fabs(stpq - stp) ? stpc : stpq;
      stpf = std::min(stpmax, stpf);
      stpf = std::max(stpmin, stpf);
    }
  } else {
    // Lower value, same sign, slope not decreasing.
    if (brackt) {
      double theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
      double s = std::max({std::fabs(theta), std::fabs(dy), std::fabs(dp)});
      double gamma = s * std::sqrt((theta / s) * (theta / s) - (dy / s) * (dp / s));
      if (stp > sty) gamma = -gamma;
      double p = (gamma - dp) + theta;
      double q = ((gamma - dp) + gamma) + dy;
      double r = p / q;
      stpf = stp + r * (sty - stp);
    } else if (stp > stx) {
      stpf = stpmax;
    } else {
      stpf = stpmin;
    }
  }
  // Update the interval that contains a minimizer.
  if (fp > fx) {
    sty = stp;
    fy = fp;
    dy = dp;
  } else {
    if (sgnd < 0.0) {
      sty = stx;
      fy = fx;
      dy = dx;
    }
    stx = stp;
    fx = fp;
    dx = dp;
  }
  stp = stpf;
}

enum LineSearchTask { LINE_SEARCH_FG, LINE_SEARCH_DONE, LINE_SEARCH_ERROR };

struct Dcsrch {
  // lnsrlb's constants.
  static constexpr double ftol = 1e-3, gtol = 0.9, xtol = 0.1;
  bool brackt = false;
  int stage = 1;
  double ginit = 0, gtest = 0, gx = 0, gy = 0, finit = 0, fx = 0, fy = 0, stx = 0, sty = 0;
  double stmin = 0, stmax = 0, width = 0, width1 = 0;

  LineSearchTask start(double f, double g, double stp, double stpmin, double stpmax) {
    if (stp < stpmin || stp > stpmax || g >= 0.0 || stpmin < 0.0 || stpmax < stpmin) return LINE_SEARCH_ERROR;
    brackt = false;
    stage = 1;
    finit = f;
    ginit = g;
    gtest = ftol * ginit;
    width = stpmax - stpmin;
    width1 = width / 0.5;
    stx = 0.0;
    fx = finit;
    gx = ginit;
    sty = 0.0;
    fy = finit;
    gy = ginit;
    stmin = 0.0;
    stmax = stp + 4.0 * stp;
    return LINE_SEARCH_FG;
  }

  // f, g: value and slope at stp. Returns DONE (convergence or a warning:
  // either way lnsrlb accepts stp) or FG with the next stp to try.
  LineSearchTask next(double f, double g, double& stp, double stpmin, double stpmax) {
    double ftest = finit + stp * gtest;
    if (stage == 1 && f <= ftest && g >= 0.0) stage = 2;
    bool done = false;
    if (brackt && (stp <= stmin || stp >= stmax)) done = true;  // rounding errors prevent progress
    if (brackt && stmax - stmin <= xtol * stmax) done = true;   // xtol test satisfied
    if (stp == stpmax && f <= ftest && g <= gtest) done = true;
    if (stp == stpmin && (f > ftest || g >= gtest)) done = true;
    if (f <= ftest && std::fabs(g) <= gtol * (-ginit)) done = true;  // convergence
    if (done) return LINE_SEARCH_DONE;

    if (stage == 1 && f <= fx && f > ftest) {
      // Lower value but not enough decrease: step on the modified function
      // psi(stp) = f(stp) - f(0) - ftol stp f'(0).
      double fm = f - stp * gtest;
      double fxm = fx - stx * gtest;
      double fym = fy - sty * gtest;
      double gm = g - gtest;
      double gxm = gx - gtest;
      double gym = gy - gtest;
      dcstep(stx, fxm, gxm, sty, fym, gym, stp, fm, gm, brackt, stmin, stmax);
      fx = fxm + stx * gtest;
      fy = fym + sty * gtest;
      gx = gxm + gtest;
      gy = gym + gtest;
    } else {
      dcstep(stx, fx, gx, sty, fy, gy, stp, f, g, brackt, stmin, stmax);
    }
    if (brackt) {
      if (std::fabs(sty - stx) >= 0.66 * width1) stp = stx + 0.5 * (sty - stx);  // bisect
      width1 = width;
      width = std::fabs(sty - stx);
    }
    if (brackt) {
      stmin = std::min(stx, sty);
      stmax = std::max(stx, sty);
    } else {
      stmin = stp + 1.1 * (stp - stx);
      stmax = stp + 4.0 * (stp - stx);
    }
    stp = std::max(stp, stpmin);
    stp = std::min(stp, stpmax);
    if ((brackt && (stp <= stmin || stp >= stmax)) || (brackt && stmax - stmin <= xtol * stmax)) stp = stx;
    return LINE_SEARCH_FG;
  }
};

// ---------------------------------------------------------------------------
// The limited-memory matrix of lbfgsb.f for a problem without bounds: every
// variable stays free, so cauchy only runs while the memory is empty (it is
// then a steepest-descent step) and subsm is the plain quasi-Newton step.
// ---------------------------------------------------------------------------

struct LbfgsbMemory {
  int64_t n = 0;
  int m = 0;
  std::vector<double> ws, wy;         // S and Y, n x m: column p (1-based) at (p - 1) * n
  FortranMatrix sy, ss, wt, wn, wn1;  // m x m; wn and wn1 (lbfgsb's snd) are 2m x 2m
  double theta = 1.0;
  int col = 0, head = 1, itail = 0, iupdat = 0;
  bool updatd = false;

  LbfgsbMemory(int64_t n_, int m_) : n(n_), m(m_) {
    ws.assign(static_cast<size_t>(n * m), 0.0);
    wy.assign(static_cast<size_t>(n * m), 0.0);
    sy.resize(m, m);
    ss.resize(m, m);
    wt.resize(m, m);
    wn.resize(2 * m, 2 * m);
    wn1.resize(2 * m, 2 * m);
  }
  double* S(int p) { return ws.data() + (p - 1) * n; }
  double* Y(int p) { return wy.data() + (p - 1) * n; }

  // "Refresh the lbfgs memory and restart the iteration."
  void reset() {
    col = 0;
    head = 1;
    theta = 1.0;
    iupdat = 0;
    updatd = false;
  }

  // formk: the LEL' factorization of K = [-D - Y'Y/theta, -R'; -R, 0] (R the
  // upper triangle of S'Y), i.e. lbfgsb's K with Z = I, so that S'AA'S and
  // L_a vanish and no variable enters or leaves the free set.
  int formk() {
    if (updatd) {
      if (iupdat > m) {  // shift the old part of wn1
        for (int jy = 1; jy <= m - 1; ++jy) {
          int js = m + jy;
          std::copy_n(&wn1(jy + 1, jy + 1), m - jy, &wn1(jy, jy));
          std::copy_n(&wn1(js + 1, js + 1), m - jy, &wn1(js, js));
          std::copy_n(&wn1(m + 2, jy + 1), m - 1, &wn1(m + 1, jy));
        }
      }
      // New row of Y'Y (block (1,1)); blocks (2,1) and (2,2) rows are zero.
      // The col sums run side by side in one pass over k, each still adding
      // its terms in the Fortran's order.
      int iy = col, is = m + col;
      int ipntr = head + col - 1;
      if (ipntr > m) ipntr -= m;
      std::vector<const double*> other(col);
      std::vector<double> acc(col, 0.0);
      for (int jy = 1, jpntr = head; jy <= col; ++jy, jpntr = jpntr % m + 1) other[jy - 1] = Y(jpntr);
      const double* yi = Y(ipntr);
      for (int64_t k = 0; k < n; ++k)
        for (int jy = 0; jy < col; ++jy) acc[jy] = acc[jy] + yi[k] * other[jy][k];
      for (int jy = 1; jy <= col; ++jy) {
        wn1(iy, jy) = acc[jy - 1];
        wn1(is, m + jy) = 0.0;
        wn1(is, jy) = 0.0;
      }
      // New column of R (block (2,1)).
      int jpntr = head + col - 1;
      if (jpntr > m) jpntr -= m;
      for (int i = 1, p = head; i <= col; ++i, p = p % m + 1) other[i - 1] = S(p);
      std::fill(acc.begin(), acc.end(), 0.0);
      const double* yj = Y(jpntr);
      for (int64_t k = 0; k < n; ++k)
        for (int i = 0; i < col; ++i) acc[i] = acc[i] + other[i][k] * yj[k];
      for (int i = 1; i <= col; ++i) wn1(m + i, col) = acc[i - 1];
    }
    // Upper triangle of WN = [D + Y'Y/theta, -L_a' + R_z; -L_a + R_z, theta S'AA'S].
    for (int iy = 1; iy <= col; ++iy) {
      int is = col + iy, is1 = m + iy;
      for (int jy = 1; jy <= iy; ++jy) {
        int js = col + jy, js1 = m + jy;
        wn(jy, iy) = wn1(iy, jy) / theta;
        wn(js, is) = wn1(is1, js1) * theta;
      }
      for (int jy = 1; jy <= iy - 1; ++jy) wn(jy, is) = -wn1(is1, jy);
      for (int jy = iy; jy <= col; ++jy) wn(jy, is) = wn1(is1, jy);
      wn(iy, iy) = wn(iy, iy) + sy(iy, iy);
    }
    // Cholesky of the (1,1) block, L^-1 (-L_a' + R_z) in the (1,2) block,
    // then the Cholesky of the updated (2,2) block.
    const int64_t m2 = 2 * m;
    if (dpofa(&wn(1, 1), m2, col) != 0) return -1;
    int col2 = 2 * col;
    for (int js = col + 1; js <= col2; ++js) dtrsl(&wn(1, 1), m2, col, &wn(1, js), 11);
    for (int is = col + 1; is <= col2; ++is)
      for (int js = is; js <= col2; ++js) wn(is, js) = wn(is, js) + small_dot(col, &wn(1, is), &wn(1, js));
    if (dpofa(&wn(col + 1, col + 1), m2, col) != 0) return -2;
    return 0;
  }

  // subsm with every variable free: z (the Cauchy point, here x) moves by the
  // Newton direction d = (1/theta) r + (1/theta^2) W K^-1 W' r; r is -g on
  // entry and the direction on exit. No bound can be hit, so no projection.
  int subsm(double* z, double* d) {
    // wv = W'd: 2 col sums side by side, each in the Fortran's order.
    std::vector<const double*> y(col), s(col);
    for (int i = 0, p = head; i < col; ++i, p = p % m + 1) {
      y[i] = Y(p);
      s[i] = S(p);
    }
    std::vector<double> temp1(col, 0.0), temp2(col, 0.0);
    for (int64_t j = 0; j < n; ++j) {
      double dj = d[j];
      for (int i = 0; i < col; ++i) {
        temp1[i] = temp1[i] + y[i][j] * dj;
        temp2[i] = temp2[i] + s[i][j] * dj;
      }
    }
    std::vector<double> wv(2 * m, 0.0);
    for (int i = 0; i < col; ++i) {
      wv[i] = temp1[i];
      wv[col + i] = theta * temp2[i];
    }
    const int64_t m2 = 2 * m;
    int col2 = 2 * col;
    if (int info = dtrsl(&wn(1, 1), m2, col2, wv.data(), 11); info != 0) return info;
    for (int i = 0; i < col; ++i) wv[i] = -wv[i];
    if (int info = dtrsl(&wn(1, 1), m2, col2, wv.data(), 1); info != 0) return info;
    // d = d + Y wv1 / theta + S wv2, correction by correction for each i.
    for (int64_t i = 0; i < n; ++i) {
      double di = d[i];
      for (int jy = 0; jy < col; ++jy) di = di + y[jy][i] * wv[jy] / theta + s[jy][i] * wv[col + jy];
      d[i] = di;
    }
    double scale = 1.0 / theta;
    for (int64_t i = 0; i < n; ++i) d[i] = scale * d[i];
    for (int64_t i = 0; i < n; ++i) z[i] = z[i] + d[i];
    return 0;
  }

  // matupd: store s = d and y = r, set theta = y'y / y's and add the new row
  // of S'Y and column of S'S.
  void matupd(const double* d, const double* r, double rr, double dr, double stp, double dtd) {
    if (iupdat <= m) {
      col = iupdat;
      itail = (head + iupdat - 2) % m + 1;
    } else {
      itail = itail % m + 1;
      head = head % m + 1;
    }
    std::copy_n(d, n, S(itail));
    std::copy_n(r, n, Y(itail));
    theta = rr / dr;
    if (iupdat > m) {  // move old information
      for (int j = 1; j <= col - 1; ++j) {
        std::copy_n(&ss(2, j + 1), j, &ss(1, j));
        std::copy_n(&sy(j + 1, j + 1), col - j, &sy(j, j));
      }
    }
    int pointr = head;
    for (int j = 1; j <= col - 1; ++j) {
      sy(col, j) = blas_dot(n, d, Y(pointr));
      ss(j, col) = blas_dot(n, S(pointr), d);
      pointr = pointr % m + 1;
    }
    ss(col, col) = stp == 1.0 ? dtd : stp * stp * dtd;
    sy(col, col) = dr;
  }

  // formt: Cholesky of T = theta S'S + L D^-1 L'. Without bounds only its
  // failure matters (it then restarts the memory); the factor feeds bmv,
  // which cauchy uses only when bounds exist.
  int formt() {
    for (int j = 1; j <= col; ++j) wt(1, j) = theta * ss(1, j);
    for (int i = 2; i <= col; ++i) {
      for (int j = i; j <= col; ++j) {
        int k1 = std::min(i, j) - 1;
        double ddum = 0.0;
        for (int k = 1; k <= k1; ++k) ddum = ddum + sy(i, k) * sy(j, k) / sy(k, k);
        wt(i, j) = ddum + theta * ss(i, j);
      }
    }
    return dpofa(&wt(1, 1), m, col) != 0 ? -3 : 0;
  }
};

double inf_norm(const std::vector<double>& g) {  // projgr without bounds
  double s = 0.0;
  for (double gi : g) s = std::max(s, std::fabs(gi));
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------
// mainlb + lnsrlb + scipy's driver loop (_lbfgsb_py.py), for nbd = 0.
// ---------------------------------------------------------------------------

LbfgsbResult lbfgsb_minimize(const LbfgsbObjective& objective, std::vector<double> x0,
                             const LbfgsbOptions& options) {
  const int64_t n = static_cast<int64_t>(x0.size());
  const int m = options.maxcor;
  const double epsmch = DBL_EPSILON;  // 2 * dlamch('e')
  const double factr = options.ftol / DBL_EPSILON;  // scipy: factr = ftol / np.finfo(float).eps
  const double tol = factr * epsmch;
  const double pgtol = options.gtol;
  const double big = 1e10;  // lnsrlb's step bound without constraints

  LbfgsbResult res;
  std::vector<double>& x = res.x;
  x = std::move(x0);
  std::vector<double> g(n), z(n), r(n), d(n), t(n);
  LbfgsbMemory mem(n, m);

  auto evaluate = [&]() {
    ++res.nfev;
    return objective(x.data(), g.data());
  };
  auto finish = [&](bool converged, const char* message) {
    res.converged = converged;
    res.message = message;
    return res;
  };

  double f = evaluate();
  res.f = f;
  int iter = 0;  // mainlb's count; scipy's nit counts NEW_X returns
  double sbgnrm = inf_norm(g);
  if (sbgnrm <= pgtol) return finish(true, "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL");

  for (;;) {
    // Search direction: steepest descent through cauchy while the memory is
    // empty, else the quasi-Newton step (cauchy is skipped, xcp = x).
    bool wrk = mem.updatd;
    if (mem.col == 0) {
      // cauchy with B = theta I and no breakpoints: d = -g, f1 = -g'g,
      // f2 = -theta f1, xcp = x + (-f1/f2) d.
      double f1 = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        double neggi = -g[i];
        d[i] = neggi;
        f1 = f1 - neggi * neggi;
      }
      double f2 = -mem.theta * f1;
      double dtm = -f1 / f2;
      if (dtm <= 0.0) dtm = 0.0;
      double tsum = 0.0 + dtm;
      for (int64_t i = 0; i < n; ++i) z[i] = x[i] + tsum * d[i];
    } else {
      z = x;
      int info = wrk ? mem.formk() : 0;
      if (info == 0) {
        for (int64_t i = 0; i < n; ++i) r[i] = -g[i];  // cmprlb
        info = mem.subsm(z.data(), r.data());
      }
      if (info != 0) {
        mem.reset();
        continue;
      }
    }
    for (int64_t i = 0; i < n; ++i) d[i] = z[i] - x[i];

    // lnsrlb: line search along d from x, starting at stp = 1 (1/||d|| on
    // the very first iteration).
    double dtd = blas_dot(n, d.data(), d.data());
    double dnorm = std::sqrt(dtd);
    double stpmx = big;
    double stp = iter == 0 ? std::min(1.0 / dnorm, stpmx) : 1.0;
    t = x;
    r = g;
    double fold = f;
    int ifun = 0, iback = 0;
    double gd = 0.0, gdold = 0.0;
    Dcsrch search;
    bool failed = false, accepted = false;
    while (!failed && !accepted) {
      gd = blas_dot(n, g.data(), d.data());
      LineSearchTask task;
      if (ifun == 0) {
        gdold = gd;
        if (gd >= 0.0) {  // not a descent direction
          failed = true;
          break;
        }
        task = search.start(f, gd, stp, 0.0, stpmx);
      } else {
        task = search.next(f, gd, stp, 0.0, stpmx);
      }
      if (task == LINE_SEARCH_ERROR) {
        failed = true;
        break;
      }
      if (task == LINE_SEARCH_DONE) {
        accepted = true;
        break;
      }
      ++ifun;
      iback = ifun - 1;
      if (iback >= options.maxls) {  // checked before the next evaluation
        failed = true;
        break;
      }
      if (stp == 1.0) {
        x = z;
      } else {
        for (int64_t i = 0; i < n; ++i) x[i] = stp * d[i] + t[i];
      }
      f = evaluate();
    }
    if (failed) {
      // Restore the previous iterate; give up if the memory was already
      // empty, else restart it.
      x = t;
      g = r;
      f = fold;
      res.f = f;
      if (mem.col == 0) {
        res.nit = iter;
        return finish(false, "ABNORMAL_TERMINATION_IN_LNSRCH");
      }
      mem.reset();
      continue;
    }

    // New iterate (task NEW_X): scipy counts it and stops at maxiter before
    // mainlb's own convergence tests run.
    ++iter;
    sbgnrm = inf_norm(g);
    res.f = f;
    res.nit = iter;
    if (res.nit >= options.maxiter) return finish(false, "STOP: TOTAL NO. of ITERATIONS REACHED LIMIT");
    if (sbgnrm <= pgtol) return finish(true, "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL");
    double ddum = std::max({std::fabs(fold), std::fabs(f), 1.0});
    if (fold - f <= tol * ddum) return finish(true, "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH");

    // s = stp d and y = g - g_old; skip the update unless y's > eps (-g's).
    for (int64_t i = 0; i < n; ++i) r[i] = g[i] - r[i];
    double rr = blas_dot(n, r.data(), r.data());
    double dr;
    if (stp == 1.0) {
      dr = gd - gdold;
      ddum = -gdold;
    } else {
      dr = (gd - gdold) * stp;
      for (int64_t i = 0; i < n; ++i) d[i] = stp * d[i];
      ddum = -gdold * stp;
    }
    if (dr <= epsmch * ddum) {
      mem.updatd = false;
      continue;
    }
    mem.updatd = true;
    ++mem.iupdat;
    mem.matupd(d.data(), r.data(), rr, dr, stp, dtd);
    if (mem.formt() != 0) mem.reset();
  }
}

// ---------------------------------------------------------------------------
// sklearn 1.2 LinearModelLoss.loss_gradient with sample_weight = 1.
// ---------------------------------------------------------------------------

double logistic_loss_gradient(const double* coef, const double* x, int64_t n, int64_t dim, const int* y,
                              int n_classes, double l2, double* grad, bool mean) {
  // sklearn >= 1.4: loss.sum() / sw_sum, then grad_pointwise /= sw_sum.
  const double sw_sum = static_cast<double>(n);
  at::Tensor X = wrap(x, {n, dim});
  if (n_classes == 2) {
    // HalfBinomialLoss: raw = X w + b; closs_grad_half_binomial per sample.
    at::Tensor raw = at::mv(X, wrap(coef, {dim}));
    const double* rp = raw.data_ptr<double>();
    const double b = coef[dim];
    std::vector<double> loss(n), gp(n);
    for (int64_t i = 0; i < n; ++i) {
      double yt = y[i], rw = rp[i] + b;
      if (rw <= 0.0) {
        double e = std::exp(rw);
        loss[i] = rw <= -37.0 ? e - yt * rw : std::log1p(e) - yt * rw;
        gp[i] = ((1.0 - yt) * e - yt) / (1.0 + e);
      } else {
        double e = std::exp(-rw);
        loss[i] = rw <= 18.0 ? std::log1p(e) + (1.0 - yt) * rw : e + (1.0 - yt) * rw;
        gp[i] = ((1.0 - yt) - yt * e) / (1.0 + e);
      }
    }
    double total = numpy_sum(loss.data(), n);
    if (mean) {
      total /= sw_sum;
      for (double& g : gp) g /= sw_sum;
    }
    total += 0.5 * l2 * blas_dot(dim, coef, coef);
    at::Tensor gw = at::mv(X.t(), wrap(gp.data(), {n}));
    const double* gwp = gw.data_ptr<double>();
    for (int64_t j = 0; j < dim; ++j) grad[j] = gwp[j] + l2 * coef[j];
    grad[dim] = numpy_sum(gp.data(), n);
    return total;
  }

  // HalfMultinomialLoss. The first dim * K entries of the F-ordered coef are
  // weights.T (dim x K, row-major); the intercepts follow.
  const int64_t K = n_classes;
  const double* intercept = coef + dim * K;
  at::Tensor raw = at::mm(X, wrap(coef, {dim, K}));
  const double* rp = raw.data_ptr<double>();
  std::vector<double> loss(n), gp(n * K), p(K), rw(K);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < K; ++k) rw[k] = rp[i * K + k] + intercept[k];
    double max_value = rw[0];  // sum_exp_minus_max
    for (int64_t k = 1; k < K; ++k)
      if (max_value < rw[k]) max_value = rw[k];
    double sum_exps = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      p[k] = std::exp(rw[k] - max_value);
      sum_exps += p[k];
    }
    double li = std::log(sum_exps) + max_value;
    const double yt = y[i];
    for (int64_t k = 0; k < K; ++k) {
      if (yt == static_cast<double>(k)) li -= rw[k];
      p[k] /= sum_exps;
      gp[i * K + k] = p[k] - (yt == static_cast<double>(k) ? 1.0 : 0.0);
    }
    loss[i] = li;
  }
  double total = numpy_sum(loss.data(), n);
  if (mean) {
    total /= sw_sum;
    for (double& g : gp) g /= sw_sum;
  }
  total += 0.5 * l2 * blas_dot(dim * K, coef, coef);
  // grad_pointwise.T @ X + l2 * weights, stored back in the F layout.
  at::Tensor G = at::mm(wrap(gp.data(), {n, K}).t(), X);
  const double* gpt = G.data_ptr<double>();
  for (int64_t j = 0; j < dim; ++j)
    for (int64_t k = 0; k < K; ++k) grad[j * K + k] = gpt[k * dim + j] + l2 * coef[j * K + k];
  for (int64_t k = 0; k < K; ++k) {  // grad_pointwise.sum(axis=0): row after row
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += gp[i * K + k];
    grad[dim * K + k] = s;
  }
  return total;
}

// ---------------------------------------------------------------------------
// LogisticRegression.fit / decision_function / predict
// ---------------------------------------------------------------------------

LogisticRegressionModel fit_logistic_regression(const float* x, int64_t n, int64_t dim, const int* y,
                                                const LogisticRegressionOptions& options) {
  LogisticRegressionModel model;
  model.dim = dim;
  model.classes.assign(y, y + n);
  std::sort(model.classes.begin(), model.classes.end());
  model.classes.erase(std::unique(model.classes.begin(), model.classes.end()), model.classes.end());
  const int K = static_cast<int>(model.classes.size());
  if (K < 2) throw std::invalid_argument("logistic regression needs at least two classes in the training labels");

  // Labels become 0..K-1 (LabelEncoder); for two classes 1 marks classes[1]
  // (sklearn's y_bin for the one-vs-rest fit it uses with lbfgs).
  std::vector<int> yk(n);
  for (int64_t i = 0; i < n; ++i)
    yk[i] = static_cast<int>(std::lower_bound(model.classes.begin(), model.classes.end(), y[i]) -
                             model.classes.begin());
  std::vector<double> xd(x, x + n * dim);  // lbfgs fits in float64
  const int64_t rows = K == 2 ? 1 : K;
  std::vector<double> w0(static_cast<size_t>(rows * (dim + 1)), 0.0);
  const bool mean = options.protocol == LOGISTIC_PROTOCOL_SKLEARN_1_4;
  // 1.4: l2_reg_strength = 1.0 / (C * sw_sum), sw_sum = n (no sample weights).
  const double l2 = mean ? 1.0 / (options.C * static_cast<double>(n)) : 1.0 / options.C;

  // One BLAS thread for the fit: its products are small and many, where
  // OpenMP hand-offs cost more than they save, and sklearn under MTEB runs
  // the fit in a joblib worker limited to one thread as well (which also
  // fixes how OpenBLAS splits its long inner products).
  struct OneThread {
    int saved = at::get_num_threads();
    OneThread() { at::set_num_threads(1); }
    ~OneThread() { at::set_num_threads(saved); }
  } one_thread;

  LbfgsbOptions lbfgs;
  lbfgs.maxiter = options.max_iter;
  lbfgs.gtol = options.tol;
  if (mean) {  // _logistic_regression_path's options from 1.4 on
    lbfgs.maxls = 50;
    lbfgs.ftol = 64 * std::numeric_limits<double>::epsilon();
  }
  LbfgsbResult res = lbfgsb_minimize(
      [&](const double* w, double* grad) {
        return logistic_loss_gradient(w, xd.data(), n, dim, yk.data(), K, l2, grad, mean);
      },
      std::move(w0), lbfgs);

  model.n_iter = std::min(res.nit, options.max_iter);
  model.converged = res.converged;
  model.coef.assign(static_cast<size_t>(rows * dim), 0.0);
  model.intercept.assign(static_cast<size_t>(rows), 0.0);
  if (K == 2) {
    std::copy_n(res.x.begin(), dim, model.coef.begin());
    model.intercept[0] = res.x[dim];
  } else {
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t j = 0; j < dim; ++j) model.coef[k * dim + j] = res.x[j * K + k];
      model.intercept[k] = res.x[dim * K + k];
    }
  }
  return model;
}

std::vector<double> decision_function(const LogisticRegressionModel& model, const float* x, int64_t n) {
  const int64_t rows = static_cast<int64_t>(model.intercept.size()), dim = model.dim;
  std::vector<double> xd(x, x + n * dim);
  at::Tensor scores = at::mm(wrap(xd.data(), {n, dim}), wrap(model.coef.data(), {rows, dim}).t());
  const double* sp = scores.data_ptr<double>();
  std::vector<double> out(static_cast<size_t>(n * rows));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < rows; ++k) out[i * rows + k] = sp[i * rows + k] + model.intercept[k];
  return out;
}

std::vector<int> predict(const LogisticRegressionModel& model, const float* x, int64_t n) {
  const int64_t rows = static_cast<int64_t>(model.intercept.size());
  std::vector<double> scores = decision_function(model, x, n);
  std::vector<int> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    const double* s = scores.data() + i * rows;
    if (rows == 1) {
      labels[i] = model.classes[s[0] > 0.0 ? 1 : 0];
    } else {
      int64_t best = 0;  // argmax: the first maximum
      for (int64_t k = 1; k < rows; ++k)
        if (s[k] > s[best]) best = k;
      labels[i] = model.classes[best];
    }
  }
  return labels;
}

}  // namespace embeval::metrics
