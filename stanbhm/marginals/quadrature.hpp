// stanbhm: a group intercept integrated out by adaptive Gauss-Hermite quadrature.
//
// Compiled with the programs that integrate a term out by quadrature (the
// "quadrature" marginal kind, stanbhm/marginals/quadrature.py), as CmdStan's
// USER_HEADER; the program declares the functions it calls and its header states
// the math below. The functions live in the global namespace, which the model's
// namespace finds them from.
//
// For each level j, with its rows i in one contiguous run (start[j] to
// start[j + 1] - 1, 1-based, rows sorted by level), the rest of the linear
// predictor eta_i and the sd of the level effects:
//
//   f_j(u) = sum_i l(y_i | eta_i + u) + log normal(u | 0, sd)
//   L_j    = log integral exp(f_j(u)) du
//
// where l is the row's log density. f_j is concave in u for every family served
// here (bernoulli and binomial with the logit link, poisson and negative binomial
// with the log link), so it has one mode. Halley's steps on f_j' (Newton's corrected
// by f_j'''), kept inside the interval the signs of f_j' bracket, find the mode m_j from
// the derivatives alone (one exp per row and step, no logarithm);
// s_j = 1 / sqrt(-f_j''(m_j)). The nodes reuse each row's exp(eta_i + m_j): at node k
// it is that times exp(z_jk - m_j). With the Q Gauss-Hermite nodes x_k and weights w_k
// (for exp(-x^2)), z_jk = m_j + sqrt(2) s_j x_k and
//
//   L_j ~= log(sqrt(2) s_j) + log sum_k w_k exp(x_k^2 + f_j(z_jk)),
//
// exact for Q -> infinity; Q = 1 is the Laplace approximation. The gradient is that
// of this approximation itself: m_j and s_j depend on the parameters through
// f_j'(m_j) = 0 and s_j^-2 = -f_j''(m_j), whose derivatives (the implicit function
// theorem) need the rows' third derivative in eta. No autodiff runs through the
// Newton steps: the value and every partial are computed in double and handed to
// Stan's reverse mode as precomputed partials.
//
// The draw of u_j in generated quantities is exact from the conditional
// exp(f_j(u)) / exp(L_j): rejection from an envelope of f_j made of its mode's value
// on [m_j - s_j, m_j + s_j] and its tangents at both ends beyond them, which lie
// above a concave f_j.
#ifndef STANBHM_MARGINALS_QUADRATURE_HPP
#define STANBHM_MARGINALS_QUADRATURE_HPP

#include <stan/model/model_header.hpp>

#include <cmath>
#include <ostream>
#include <vector>

namespace stanbhm_quadrature {

// One row's log density l, less the terms without eta (`constant`), and its
// derivatives in eta (d1, d2, d3), and in the family's own parameter phi where it has
// one (p0 = dl/dphi, p1 = dd1/dphi, p2 = dd2/dphi).
struct Row {
  double l, d1, d2, d3, p0, p1, p2;
};

// Each family: row(y, n, x, e, phi, value, order) at the linear predictor x with
// e = exp(x), with n the trials (binomial) and phi the shape (negative binomial),
// arguments a family does not have ignored. e comes in from the caller because the
// nodes of a level are its mode's e times one factor per node, a product instead of an
// exp per row and node; e may be 0 or inf where exp(x) under- or overflows, and every
// formula below is written to stay finite there. l and p0 are computed only when
// `value` is set (the Newton steps need only the derivatives); d2, d3 and p2 from
// `order` 2 and 3. constant(y, n, phi) holds the terms of the log density without eta
// and constant_phi their derivative in phi, evaluated once per row, not per node.

// p = e / (1 + e) and q = 1 - p without cancellation or overflow, and, for
// log(1 + e), log(1 + r) with r the smaller of e and 1 / e: log(1 + e) is that, plus
// x = log(e) when e > 1 (`big`), which the caller adds
struct Logistic {
  double p, q, log_1p_r;
  bool big;
  explicit Logistic(double e, bool value) : big(e > 1) {
    double r = big ? 1 / e : e;  // r <= 1
    double near = 1 / (1 + r), far = r * near;
    p = big ? near : far;
    q = big ? far : near;
    // log, not log1p: the row's log density is summed into f, so its absolute error
    // is what counts, and log(1 + r) for r <= 1 is within 2.3e-16 of log1p(r)
    log_1p_r = value ? std::log(1 + r) : 0;
  }
};

struct BernoulliLogit {
  static double constant(int, int, double) { return 0; }
  static double constant_phi(int, double) { return 0; }
  static Row row(int y, int, double x, double e, double, bool value, int order) {
    Row r{};
    Logistic s(e, value);
    // y x - log(1 + e), and log(1 + e) = x + log(1 + 1 / e) when e > 1
    if (value)
      r.l = s.big ? (y - 1) * x - s.log_1p_r : y * x - s.log_1p_r;
    r.d1 = y - s.p;
    if (order > 1) {
      double v = s.p * s.q;
      r.d2 = -v;
      r.d3 = -v * (s.q - s.p);
    }
    return r;
  }
};

struct BinomialLogit {
  static double constant(int y, int n, double) { return stan::math::binomial_coefficient_log(n, y); }
  static double constant_phi(int, double) { return 0; }
  static Row row(int y, int n, double x, double e, double, bool value, int order) {
    Row r{};
    Logistic s(e, value);
    // y x - n log(1 + e), and lchoose(n, y) in `constant`
    if (value)
      r.l = s.big ? (y - n) * x - n * s.log_1p_r : y * x - n * s.log_1p_r;
    r.d1 = y - n * s.p;
    if (order > 1) {
      double v = n * s.p * s.q;
      r.d2 = -v;
      r.d3 = -v * (s.q - s.p);
    }
    return r;
  }
};

struct PoissonLog {
  static double constant(int y, int, double) { return -std::lgamma(y + 1.0); }
  static double constant_phi(int, double) { return 0; }
  static Row row(int y, int, double x, double e, double, bool value, int order) {
    Row r{};
    if (value)
      r.l = y * x - e;
    r.d1 = y - e;
    if (order > 1) {
      r.d2 = -e;
      r.d3 = -e;
    }
    return r;
  }
};

struct NegBinomial2Log {
  // l = lgamma(y + phi) - lgamma(y + 1) - lgamma(phi) + phi log(phi)  (`constant`)
  //     + y x - (y + phi) log(e + phi)
  static double constant(int y, int, double phi) {
    return std::lgamma(y + phi) - std::lgamma(y + 1.0) - std::lgamma(phi)
           + phi * std::log(phi);
  }
  static double constant_phi(int y, double phi) {
    return stan::math::digamma(y + phi) - stan::math::digamma(phi) + std::log(phi) + 1;
  }
  static Row row(int y, int, double x, double e, double phi, bool value, int order) {
    Row r{};
    // q = e / (e + phi) and 1 - q, from the smaller of e / phi and phi / e
    bool big = e > phi;
    double ratio = big ? phi / e : e / phi;
    double near = 1 / (1 + ratio), far = ratio * near;
    double q = big ? near : far, one_q = big ? far : near;
    double yp = y + phi;
    r.d1 = y - yp * q;
    // d1 = y - (y + phi) q and dq/dphi = -q (1 - q) / phi
    r.p1 = -q + yp * q * one_q / phi;
    if (value) {
      // log(e + phi) = log(max) + log(1 + min / max)
      double log_e_phi = (big ? x : std::log(phi)) + std::log(1 + ratio);
      r.l = y * x - yp * log_e_phi;
      r.p0 = -log_e_phi - yp / phi * one_q;
    }
    if (order > 1) {
      // d2 = -(y + phi) q (1 - q), d3 = -(y + phi) q (1 - q) (1 - 2 q)
      double v = yp * q * one_q;
      r.d2 = -v;
      r.d3 = -v * (one_q - q);
      // dd2/dphi = -q (1 - q) - (y + phi) (1 - 2 q) dq/dphi
      r.p2 = -q * one_q + yp * (one_q - q) * q * one_q / phi;
    }
    return r;
  }
};

// The Q Gauss-Hermite nodes and log weights for exp(-x^2), by the eigenvalues of
// the Jacobi matrix of the Hermite polynomials (Golub and Welsch).
inline void hermite(int q, std::vector<double>& x, std::vector<double>& log_w) {
  Eigen::MatrixXd jacobi = Eigen::MatrixXd::Zero(q, q);
  for (int k = 1; k < q; ++k)
    jacobi(k, k - 1) = jacobi(k - 1, k) = std::sqrt(k / 2.0);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(jacobi);
  x.resize(q);
  log_w.resize(q);
  for (int k = 0; k < q; ++k) {
    x[k] = eig.eigenvalues()(k);
    double v = eig.eigenvectors()(0, k);
    log_w[k] = 0.5 * std::log(M_PI) + std::log(v * v);
  }
}

// What the gradient needs of each row at the mode: e = exp(eta + m), d2, d3, p1, p2.
struct AtMode {
  std::vector<double> e, d2, d3, p1, p2;
  void resize(int rows) {
    for (auto* v : {&e, &d2, &d3, &p1, &p2})
      v->resize(rows);
  }
};

// One level's rows, in double.
template <typename F>
struct Level {
  const std::vector<int>& y;
  const std::vector<int>& n;
  const double* eta;
  int a, b;  // 0-based rows [a, b)
  double sd, phi;

  int trials(int i) const { return n.empty() ? 0 : n[i]; }

  // f(u) less the rows' terms without u (`constant`) and f'(u): what the draws need
  void at(double u, double* out) const {
    double s2 = sd * sd;
    double f = -0.5 * u * u / s2 - std::log(sd) - 0.5 * std::log(2 * M_PI), g = -u / s2;
    for (int i = a; i < b; ++i) {
      double x = eta[i] + u;
      Row r = F::row(y[i], trials(i), x, std::exp(x), phi, true, 1);
      f += r.l;
      g += r.d1;
    }
    out[0] = f;
    out[1] = g;
  }

  // f'(u), f''(u) and f'''(u), keeping each row's e, d2, d3, p1, p2 in `rows`: one
  // exp per row and no logarithm
  void slope(double u, double* out, AtMode& rows) const {
    double s2 = sd * sd, g = -u / s2, h = -1 / s2, h_u = 0;
    for (int i = a; i < b; ++i) {
      int r = i - a;
      double x = eta[i] + u, e = std::exp(x);
      Row row = F::row(y[i], trials(i), x, e, phi, false, 3);
      g += row.d1;
      h += row.d2;
      h_u += row.d3;
      rows.e[r] = e;
      rows.d2[r] = row.d2;
      rows.d3[r] = row.d3;
      rows.p1[r] = row.p1;
      rows.p2[r] = row.p2;
    }
    out[0] = g;
    out[1] = h;
    out[2] = h_u;
  }

  // The mode of the concave f: Halley's steps on f' (Newton's, corrected by f''',
  // which the gradient needs at the mode anyway; cubic convergence), Newton's where the
  // correction is large, each kept inside the interval that the signs of f' seen so far
  // bracket the mode in, and halved into it when a step leaves it. Stops where Newton's
  // step would move u by less than 1e-10 of the curvature's scale, and returns that u
  // with f', f'', f''' there in `out` and the rows' values there in `rows`. Only
  // derivatives are evaluated, never f.
  double mode(double* out, AtMode& rows) const {
    rows.resize(b - a);
    double u = 0, lo = -INFINITY, hi = INFINITY;
    for (int it = 0; it < 200; ++it) {
      slope(u, out, rows);
      double g = out[0], h = out[1], newton = -g / h;
      if (!(std::fabs(newton) * std::sqrt(-h) >= 1e-10))
        break;
      (g > 0 ? lo : hi) = u;
      double damp = 1 + 0.5 * newton * out[2] / h;
      double step = damp >= 0.5 && damp <= 2 ? newton / damp : newton;
      double next = u + step;
      u = next > lo && next < hi ? next : 0.5 * (lo + hi);
    }
    return u;
  }
};

inline void check_rows(const char* function, const std::vector<int>& y,
                       int n_eta, const std::vector<int>& start) {
  if (static_cast<int>(y.size()) != n_eta)
    throw std::domain_error(std::string(function) + ": y and eta differ in size");
  if (start.empty() || start.front() != 1
      || start.back() != static_cast<int>(y.size()) + 1)
    throw std::domain_error(std::string(function)
                            + ": start must run from 1 to the rows + 1");
  for (size_t j = 1; j < start.size(); ++j)
    if (start[j] < start[j - 1])
      throw std::domain_error(std::string(function) + ": start must not decrease");
}

// sum_j L_j with its partials in eta, sd and phi, or each L_j (levels != nullptr).
template <typename F, typename T_eta, typename T_sd, typename T_phi>
stan::return_type_t<T_eta, T_sd, T_phi> log_marginal(
    const char* function, const std::vector<int>& y, const std::vector<int>& n,
    const T_eta& eta, const std::vector<int>& start, const T_sd& sd,
    const T_phi& phi, int nodes, Eigen::VectorXd* levels) {
  using stan::math::value_of;
  const auto& eta_ref = stan::math::to_ref(eta);
  Eigen::VectorXd eta_val = value_of(eta_ref);
  double sd_val = value_of(sd), phi_val = value_of(phi);
  check_rows(function, y, eta_val.size(), start);
  stan::math::check_positive_finite(function, "sd", sd_val);
  stan::math::check_positive_finite(function, "phi", phi_val);
  stan::math::check_positive(function, "nodes", nodes);
  std::vector<double> x, log_w;
  hermite(nodes, x, log_w);
  int n_levels = start.size() - 1;
  if (levels)
    levels->resize(n_levels);
  constexpr bool want_eta = !stan::is_constant_all<T_eta>::value;
  constexpr bool want_sd = !stan::is_constant_all<T_sd>::value;
  constexpr bool want_phi = !stan::is_constant_all<T_phi>::value;
  Eigen::VectorXd d_eta = Eigen::VectorXd::Zero(eta_val.size());
  double d_sd = 0, d_phi = 0, total = 0;
  double s2 = sd_val * sd_val, s3 = s2 * sd_val;
  // per level: at each node its offset from the mode and exp of it, its log integrand,
  // derivative and (phi) partial; per row and node the derivative of the row's log
  // density; per row its values at the mode
  std::vector<double> a(nodes), z(nodes), shift(nodes), grow(nodes), fp(nodes),
      phi_k(nodes), pi(nodes);
  std::vector<double> d1;
  AtMode at_mode;
  double norm = -std::log(sd_val) - 0.5 * std::log(2 * M_PI);
  for (int j = 0; j < n_levels; ++j) {
    Level<F> lv{y, n, eta_val.data(), start[j] - 1, start[j + 1] - 1, sd_val, phi_val};
    int rows = lv.b - lv.a;
    double at_m[3];
    double m = lv.mode(at_m, at_mode), H = at_m[1], H_u = at_m[2];
    double constant = 0, constant_phi = 0, g_phi = 0, h_phi = 0;
    for (int r = 0; r < rows; ++r) {
      int i = lv.a + r;
      constant += F::constant(y[i], lv.trials(i), phi_val);
      constant_phi += F::constant_phi(y[i], phi_val);
      g_phi += at_mode.p1[r];
      h_phi += at_mode.p2[r];
    }
    double s = 1 / std::sqrt(-H);
    for (int k = 0; k < nodes; ++k) {
      shift[k] = M_SQRT2 * s * x[k];
      z[k] = m + shift[k];
      grow[k] = std::exp(shift[k]);
    }
    d1.resize(rows * nodes);
    double top = -INFINITY;
    for (int k = 0; k < nodes; ++k) {
      double f = norm - 0.5 * z[k] * z[k] / s2, g = -z[k] / s2, p = 0;
      for (int r = 0; r < rows; ++r) {
        int i = lv.a + r;
        Row row = F::row(y[i], lv.trials(i), eta_val[i] + z[k], at_mode.e[r] * grow[k],
                         phi_val, true, 1);
        f += row.l;
        g += row.d1;
        p += row.p0;
        d1[r * nodes + k] = row.d1;
      }
      a[k] = log_w[k] + x[k] * x[k] + f;
      fp[k] = g;
      phi_k[k] = p;
      top = std::max(top, a[k]);
    }
    double sum = 0;
    for (int k = 0; k < nodes; ++k)
      sum += std::exp(a[k] - top);
    double value = std::log(M_SQRT2 * s) + top + std::log(sum) + constant;
    total += value;
    if (levels)
      (*levels)(j) = value;
    if (!(want_eta || want_sd || want_phi))
      continue;
    // pi_k: the nodes' shares; A_u, A_s: dL/dm and dL/ds at fixed parameters
    double A_u = 0, A_s = 1 / s, direct_sd = 0, direct_phi = constant_phi;
    for (int k = 0; k < nodes; ++k) {
      pi[k] = std::exp(a[k] - top) / sum;
      A_u += pi[k] * fp[k];
      A_s += pi[k] * fp[k] * M_SQRT2 * x[k];
      direct_sd += pi[k] * (z[k] * z[k] / s3 - 1 / sd_val);
      direct_phi += pi[k] * phi_k[k];
    }
    // dm/dtheta = -(dg/dtheta) / H; ds/dtheta = s^3 / 2 (dH/dtheta + H_u dm/dtheta)
    double c_h = 0.5 * A_s * s * s * s;
    double dm_coef = -(A_u + c_h * H_u) / H;  // times dg/dtheta
    if (want_sd)
      d_sd += direct_sd + dm_coef * (2 * m / s3) + c_h * (2 / s3);
    for (int r = 0; r < rows; ++r) {
      double direct = 0;
      for (int k = 0; k < nodes; ++k)
        direct += pi[k] * d1[r * nodes + k];
      d_eta[lv.a + r] = direct + dm_coef * at_mode.d2[r] + c_h * at_mode.d3[r];
    }
    d_phi += direct_phi + dm_coef * g_phi + c_h * h_phi;
  }
  auto ops = stan::math::make_partials_propagator(eta_ref, sd, phi);
  if constexpr (want_eta)
    stan::math::partials<0>(ops) = d_eta;
  if constexpr (want_sd)
    stan::math::partials<1>(ops)[0] += d_sd;
  if constexpr (want_phi)
    stan::math::partials<2>(ops)[0] += d_phi;
  return ops.build(total);
}

// A draw of each level's effect from its conditional, exp(f_j(u) - L_j).
template <typename F, typename T_eta, typename RNG>
Eigen::VectorXd draw(const char* function, const std::vector<int>& y,
                     const std::vector<int>& n, const T_eta& eta,
                     const std::vector<int>& start, double sd, double phi, RNG& rng) {
  Eigen::VectorXd eta_val = stan::math::value_of(eta);
  check_rows(function, y, eta_val.size(), start);
  stan::math::check_positive_finite(function, "sd", sd);
  int n_levels = start.size() - 1;
  Eigen::VectorXd out(n_levels);
  boost::random::uniform_01<double> unif;
  AtMode at_mode;
  for (int j = 0; j < n_levels; ++j) {
    Level<F> lv{y, n, eta_val.data(), start[j] - 1, start[j + 1] - 1, sd, phi};
    double slope_m[3], at_m[2], lo[2], hi[2];
    double m = lv.mode(slope_m, at_mode);
    lv.at(m, at_m);
    double s = 1 / std::sqrt(-slope_m[1]);
    double u_lo = m - s, u_hi = m + s;
    lv.at(u_lo, lo);
    lv.at(u_hi, hi);
    // the envelope's three pieces, their masses relative to exp(f(m))
    double mid = u_hi - u_lo;
    double right = std::exp(hi[0] - at_m[0]) / -hi[1];  // tangent slope hi[1] < 0
    double left = std::exp(lo[0] - at_m[0]) / lo[1];    // lo[1] > 0
    double total = mid + right + left;
    for (int tries = 0;; ++tries) {
      if (tries == 100000)
        throw std::domain_error(std::string(function)
                                + ": no draw accepted in 100000 tries");
      double pick = unif(rng) * total, u, env;
      if (pick < mid) {
        u = u_lo + unif(rng) * mid;
        env = at_m[0];
      } else if (pick < mid + right) {
        double e = -std::log1p(-unif(rng)) / -hi[1];  // exponential, rate -f'(u_hi)
        u = u_hi + e;
        env = hi[0] + hi[1] * e;
      } else {
        double e = -std::log1p(-unif(rng)) / lo[1];
        u = u_lo - e;
        env = lo[0] - lo[1] * e;
      }
      double at_u[2];
      lv.at(u, at_u);
      if (std::log(unif(rng)) <= at_u[0] - env) {
        out(j) = u;
        break;
      }
    }
  }
  return out;
}

inline const std::vector<int> no_trials{};

}  // namespace stanbhm_quadrature

// The functions the programs declare, agq_<family>_<what> (adaptive Gauss quadrature),
// one set per family, with the family's own arguments where Stan's density of the rows
// has them (binomial_logit(y | trials, eta), neg_binomial_2_log(y | eta, phi)): the
// rows' log density with the effects integrated out, summed over levels (_lpmf) or per
// level (_levels), and one draw of the effects (_rng). `nodes` is Q.
#define STANBHM_QUADRATURE_FAMILY(NAME, FAMILY)                                     \
  template <bool propto__, typename T_eta, typename T_sd>                           \
  stan::return_type_t<T_eta, T_sd> agq_##NAME##_lpmf(                        \
      const std::vector<int>& y, const T_eta& eta, const std::vector<int>& start,   \
      const T_sd& sd, const int& nodes, std::ostream* pstream__) {                  \
    return stanbhm_quadrature::log_marginal<stanbhm_quadrature::FAMILY>(            \
        "agq_" #NAME "_lpmf", y, stanbhm_quadrature::no_trials, eta, start,  \
        sd, 1.0, nodes, nullptr);                                                   \
  }                                                                                 \
  template <typename T_eta, typename T_sd>                                          \
  Eigen::VectorXd agq_##NAME##_levels(                                       \
      const std::vector<int>& y, const T_eta& eta, const std::vector<int>& start,   \
      const T_sd& sd, const int& nodes, std::ostream* pstream__) {                  \
    Eigen::VectorXd out;                                                            \
    stanbhm_quadrature::log_marginal<stanbhm_quadrature::FAMILY>(                   \
        "agq_" #NAME "_levels", y, stanbhm_quadrature::no_trials,            \
        stan::math::value_of(eta), start, stan::math::value_of(sd), 1.0, nodes,     \
        &out);                                                                      \
    return out;                                                                     \
  }                                                                                 \
  template <typename T_eta, typename T_sd, typename RNG>                            \
  Eigen::VectorXd agq_##NAME##_rng(                                          \
      const std::vector<int>& y, const T_eta& eta, const std::vector<int>& start,   \
      const T_sd& sd, RNG& base_rng__, std::ostream* pstream__) {                   \
    return stanbhm_quadrature::draw<stanbhm_quadrature::FAMILY>(                    \
        "agq_" #NAME "_rng", y, stanbhm_quadrature::no_trials, eta, start,   \
        stan::math::value_of(sd), 1.0, base_rng__);                                 \
  }

STANBHM_QUADRATURE_FAMILY(bernoulli, BernoulliLogit)
STANBHM_QUADRATURE_FAMILY(poisson, PoissonLog)
#undef STANBHM_QUADRATURE_FAMILY

template <bool propto__, typename T_eta, typename T_sd>
stan::return_type_t<T_eta, T_sd> agq_binomial_lpmf(
    const std::vector<int>& y, const std::vector<int>& trials, const T_eta& eta,
    const std::vector<int>& start, const T_sd& sd, const int& nodes,
    std::ostream* pstream__) {
  return stanbhm_quadrature::log_marginal<stanbhm_quadrature::BinomialLogit>(
      "agq_binomial_lpmf", y, trials, eta, start, sd, 1.0, nodes, nullptr);
}

template <typename T_eta, typename T_sd>
Eigen::VectorXd agq_binomial_levels(
    const std::vector<int>& y, const std::vector<int>& trials, const T_eta& eta,
    const std::vector<int>& start, const T_sd& sd, const int& nodes,
    std::ostream* pstream__) {
  Eigen::VectorXd out;
  stanbhm_quadrature::log_marginal<stanbhm_quadrature::BinomialLogit>(
      "agq_binomial_levels", y, trials, stan::math::value_of(eta), start,
      stan::math::value_of(sd), 1.0, nodes, &out);
  return out;
}

template <typename T_eta, typename T_sd, typename RNG>
Eigen::VectorXd agq_binomial_rng(
    const std::vector<int>& y, const std::vector<int>& trials, const T_eta& eta,
    const std::vector<int>& start, const T_sd& sd, RNG& base_rng__,
    std::ostream* pstream__) {
  return stanbhm_quadrature::draw<stanbhm_quadrature::BinomialLogit>(
      "agq_binomial_rng", y, trials, eta, start, stan::math::value_of(sd),
      1.0, base_rng__);
}

template <bool propto__, typename T_eta, typename T_phi, typename T_sd>
stan::return_type_t<T_eta, T_phi, T_sd> agq_negbinomial_lpmf(
    const std::vector<int>& y, const T_eta& eta, const T_phi& phi,
    const std::vector<int>& start, const T_sd& sd, const int& nodes,
    std::ostream* pstream__) {
  return stanbhm_quadrature::log_marginal<stanbhm_quadrature::NegBinomial2Log>(
      "agq_negbinomial_lpmf", y, stanbhm_quadrature::no_trials, eta, start,
      sd, phi, nodes, nullptr);
}

template <typename T_eta, typename T_phi, typename T_sd>
Eigen::VectorXd agq_negbinomial_levels(
    const std::vector<int>& y, const T_eta& eta, const T_phi& phi,
    const std::vector<int>& start, const T_sd& sd, const int& nodes,
    std::ostream* pstream__) {
  Eigen::VectorXd out;
  stanbhm_quadrature::log_marginal<stanbhm_quadrature::NegBinomial2Log>(
      "agq_negbinomial_levels", y, stanbhm_quadrature::no_trials,
      stan::math::value_of(eta), start, stan::math::value_of(sd),
      stan::math::value_of(phi), nodes, &out);
  return out;
}

template <typename T_eta, typename T_phi, typename T_sd, typename RNG>
Eigen::VectorXd agq_negbinomial_rng(
    const std::vector<int>& y, const T_eta& eta, const T_phi& phi,
    const std::vector<int>& start, const T_sd& sd, RNG& base_rng__,
    std::ostream* pstream__) {
  return stanbhm_quadrature::draw<stanbhm_quadrature::NegBinomial2Log>(
      "agq_negbinomial_rng", y, stanbhm_quadrature::no_trials, eta, start,
      stan::math::value_of(sd), stan::math::value_of(phi), base_rng__);
}

#endif
