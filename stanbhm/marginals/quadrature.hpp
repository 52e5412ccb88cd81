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
// with the log link), so it has one mode. Damped Newton steps find the mode m_j;
// s_j = 1 / sqrt(-f_j''(m_j)). With the Q Gauss-Hermite nodes x_k and weights w_k
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

// Each family: row(y, n, eta, phi, order) with n the trials (binomial) and phi the
// shape (negative binomial), arguments a family does not have ignored; constant(y, n,
// phi), the terms of the log density without eta, and constant_phi, their derivative
// in phi, evaluated once per row instead of once per node.
// log p and p = inv_logit(eta) from one exp: log p = -log1p(exp(-eta)).
inline void logistic(double eta, double& log_p, double& log_q, double& p) {
  double e = std::exp(-std::fabs(eta)), l = std::log1p(e);
  if (eta >= 0) {
    log_p = -l;
    log_q = -eta - l;
    p = 1 / (1 + e);
  } else {
    log_p = eta - l;
    log_q = -l;
    p = e / (1 + e);
  }
}

struct BernoulliLogit {
  static double constant(int, int, double) { return 0; }
  static double constant_phi(int, double) { return 0; }
  static Row row(int y, int, double eta, double, int order) {
    Row r{};
    double log_p, log_q, p;
    logistic(eta, log_p, log_q, p);
    r.l = y ? log_p : log_q;
    r.d1 = y - p;
    if (order > 1) {
      double v = p * (1 - p);
      r.d2 = -v;
      r.d3 = -v * (1 - 2 * p);
    }
    return r;
  }
};

struct BinomialLogit {
  static double constant(int y, int n, double) { return stan::math::binomial_coefficient_log(n, y); }
  static double constant_phi(int, double) { return 0; }
  static Row row(int y, int n, double eta, double, int order) {
    Row r{};
    double log_p, log_q, p;
    logistic(eta, log_p, log_q, p);
    // y log p + (n - y) log(1 - p), and lchoose(n, y) in `constant`
    r.l = y * log_p + (n - y) * log_q;
    r.d1 = y - n * p;
    if (order > 1) {
      double v = n * p * (1 - p);
      r.d2 = -v;
      r.d3 = -v * (1 - 2 * p);
    }
    return r;
  }
};

struct PoissonLog {
  static double constant(int y, int, double) { return -std::lgamma(y + 1.0); }
  static double constant_phi(int, double) { return 0; }
  static Row row(int y, int, double eta, double, int order) {
    Row r{};
    double mu = std::exp(eta);
    r.l = y * eta - mu;
    r.d1 = y - mu;
    if (order > 1) {
      r.d2 = -mu;
      r.d3 = -mu;
    }
    return r;
  }
};

struct NegBinomial2Log {
  // l = lgamma(y + phi) - lgamma(y + 1) - lgamma(phi) + phi log(phi)  (`constant`)
  //     + y eta - (y + phi) log(exp(eta) + phi)
  static double constant(int y, int, double phi) {
    return std::lgamma(y + phi) - std::lgamma(y + 1.0) - std::lgamma(phi)
           + phi * std::log(phi);
  }
  static double constant_phi(int y, double phi) {
    return stan::math::digamma(y + phi) - stan::math::digamma(phi) + std::log(phi) + 1;
  }
  static Row row(int y, int, double eta, double phi, int order) {
    Row r{};
    // log(mu + phi) without overflow for large eta: eta + log1p(phi / mu)
    double log_mu_phi = stan::math::log_sum_exp(eta, std::log(phi));
    double q = std::exp(eta - log_mu_phi);  // mu / (mu + phi)
    double yp = y + phi;
    r.l = y * eta - yp * log_mu_phi;
    r.d1 = y - yp * q;
    double one_q = 1 - q;  // phi / (mu + phi)
    r.p0 = -log_mu_phi - yp / phi * one_q;
    // d1 = y - (y + phi) q and dq/dphi = -q (1 - q) / phi
    r.p1 = -q + yp * q * one_q / phi;
    if (order > 1) {
      // d2 = -(y + phi) q (1 - q), d3 = -(y + phi) q (1 - q) (1 - 2 q)
      double v = yp * q * one_q;
      r.d2 = -v;
      r.d3 = -v * (1 - 2 * q);
      // dd2/dphi = -q (1 - q) - (y + phi) (1 - 2 q) dq/dphi
      r.p2 = -q * one_q + yp * (1 - 2 * q) * q * one_q / phi;
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

// One level's rows, in double.
template <typename F>
struct Level {
  const std::vector<int>& y;
  const std::vector<int>& n;
  const double* eta;
  int a, b;  // 0-based rows [a, b)
  double sd, phi;

  // f(u) less the rows' terms without u (`constant`), f'(u) and, at order 2, f''(u):
  // what the mode and the draws need
  void at(double u, int order, double* out) const {
    double s2 = sd * sd;
    double f = -0.5 * u * u / s2 - std::log(sd) - 0.5 * std::log(2 * M_PI);
    double g = -u / s2, h = -1 / s2;
    for (int i = a; i < b; ++i) {
      Row r = F::row(y[i], n.empty() ? 0 : n[i], eta[i] + u, phi, order);
      f += r.l;
      g += r.d1;
      h += r.d2;
    }
    out[0] = f;
    out[1] = g;
    out[2] = h;
  }

  // The mode of f by Newton steps, halved while they do not raise f.
  double mode() const {
    double u = 0, cur[3], next[3];
    at(u, 2, cur);
    for (int it = 0; it < 200; ++it) {
      double step = -cur[1] / cur[2];
      int halvings = 0;
      at(u + step, 2, next);
      while (!(next[0] >= cur[0]) && halvings < 60) {
        step /= 2;
        ++halvings;
        at(u + step, 2, next);
      }
      u += step;
      bool done = std::fabs(step) * std::sqrt(-next[2]) < 1e-10;
      std::copy(next, next + 3, cur);
      if (done)
        break;
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
  // per level: at each node its log integrand, derivative and (phi) partial; per row
  // and node the derivative of the row's log density, and per row its values at the mode
  std::vector<double> a(nodes), z(nodes), fp(nodes), phi_k(nodes), pi(nodes);
  std::vector<double> d1, at_mode;
  double norm = -std::log(sd_val) - 0.5 * std::log(2 * M_PI);
  for (int j = 0; j < n_levels; ++j) {
    Level<F> lv{y, n, eta_val.data(), start[j] - 1, start[j + 1] - 1, sd_val, phi_val};
    int rows = lv.b - lv.a;
    double m = lv.mode(), constant = 0, constant_phi = 0;
    // at the mode: H = f''(m), H_u = f'''(m), and each row's d2, d3, p1, p2
    at_mode.resize(4 * rows);
    double H = -1 / s2, H_u = 0;
    for (int r = 0; r < rows; ++r) {
      int i = lv.a + r;
      Row row = F::row(y[i], n.empty() ? 0 : n[i], eta_val[i] + m, phi_val, 3);
      at_mode[4 * r] = row.d2;
      at_mode[4 * r + 1] = row.d3;
      at_mode[4 * r + 2] = row.p1;
      at_mode[4 * r + 3] = row.p2;
      H += row.d2;
      H_u += row.d3;
      constant += F::constant(y[i], n.empty() ? 0 : n[i], phi_val);
      constant_phi += F::constant_phi(y[i], phi_val);
    }
    double s = 1 / std::sqrt(-H);
    d1.resize(rows * nodes);
    double top = -INFINITY;
    for (int k = 0; k < nodes; ++k) {
      z[k] = m + M_SQRT2 * s * x[k];
      double f = norm - 0.5 * z[k] * z[k] / s2, g = -z[k] / s2, p = 0;
      for (int r = 0; r < rows; ++r) {
        int i = lv.a + r;
        Row row = F::row(y[i], n.empty() ? 0 : n[i], eta_val[i] + z[k], phi_val, 1);
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
    double g_phi = 0, h_phi = 0;
    for (int r = 0; r < rows; ++r) {
      double direct = 0;
      for (int k = 0; k < nodes; ++k)
        direct += pi[k] * d1[r * nodes + k];
      d_eta[lv.a + r] = direct + dm_coef * at_mode[4 * r] + c_h * at_mode[4 * r + 1];
      g_phi += at_mode[4 * r + 2];
      h_phi += at_mode[4 * r + 3];
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
  for (int j = 0; j < n_levels; ++j) {
    Level<F> lv{y, n, eta_val.data(), start[j] - 1, start[j + 1] - 1, sd, phi};
    double m = lv.mode(), at_m[3], lo[3], hi[3];
    lv.at(m, 2, at_m);
    double s = 1 / std::sqrt(-at_m[2]);
    double u_lo = m - s, u_hi = m + s;
    lv.at(u_lo, 1, lo);
    lv.at(u_hi, 1, hi);
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
      double at_u[3];
      lv.at(u, 1, at_u);
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
