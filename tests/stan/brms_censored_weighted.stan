// y | weights(w) + cens(c, y2) ~ 1 + X, negative binomial with a log link, written the
// way brms writes a weighted, censored count regression: X centered in transformed data,
// the mean put on the outcome scale once (the CDFs take mu, not log mu), then one row at
// a time, each row's log probability times its weight: an exact row its log mass, a
// right-censored one log P(Y > y), a left-censored one log P(Y <= y), an interval one
// log P(y < Y <= rcens). With `truncated`, every row is truncated below at lb as
// trunc(lb = lb) writes it, brms's form without cens(): the row's log mass less
// log P(Y > lb - 1), all times its weight. The priors are the ones the test gives
// stanbhm. The reference the generated program is compared with
// (tests/test_addition_terms.py).
data {
  int<lower=1> N; // rows
  array[N] int<lower=0> Y; // outcome
  array[N] int<lower=-1, upper=2> cens; // 0 none, 1 right, -1 left, 2 interval
  array[N] int<lower=0> rcens; // upper bound of the interval-censored rows
  vector<lower=0>[N] weights; // row weights
  int<lower=0, upper=1> truncated; // 1: every row truncated below at lb
  int<lower=0> lb; // the lower truncation bound
  int<lower=1> K; // predictors
  matrix[N, K] X;
}
transformed data {
  vector[K] means_X;
  matrix[N, K] Xc;
  for (k in 1 : K) {
    means_X[k] = mean(X[ : , k]);
    Xc[ : , k] = X[ : , k] - means_X[k];
  }
}
parameters {
  real Intercept; // at the means of the predictors
  vector[K] b;
  real<lower=0> shape; // brms's name of the NB2 precision
}
model {
  vector[N] mu = exp(Intercept + Xc * b);
  for (n in 1 : N) {
    if (cens[n] == 0) {
      target += weights[n] * neg_binomial_2_lpmf(Y[n] | mu[n], shape);
    } else if (cens[n] == 1) {
      target += weights[n] * neg_binomial_2_lccdf(Y[n] | mu[n], shape);
    } else if (cens[n] == -1) {
      target += weights[n] * neg_binomial_2_lcdf(Y[n] | mu[n], shape);
    } else if (cens[n] == 2) {
      target += weights[n] * log_diff_exp(neg_binomial_2_lcdf(rcens[n] | mu[n], shape),
                                          neg_binomial_2_lcdf(Y[n] | mu[n], shape));
    }
    if (truncated) {
      target += -weights[n] * neg_binomial_2_lccdf(lb - 1 | mu[n], shape);
    }
  }
  target += normal_lpdf(Intercept | 1.5, 1);
  target += normal_lpdf(b | 0, 1);
  target += gamma_lpdf(shape | 2, 0.1);
}
