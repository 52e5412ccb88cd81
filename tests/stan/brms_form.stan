// y ~ 1 + X + (Z | g), gaussian, written as brms writes it: X centered in the
// population part only, the covariates Z of the level effects as given, the level
// effects non-centered. The reference the generated programs are compared with.
data {
  int<lower=1> N;
  vector[N] y;
  int<lower=1> K;
  matrix[N, K] X;
  int<lower=1> J;
  array[N] int<lower=1, upper=J> g;
  int<lower=1> M;
  matrix[N, M] Z;
  int<lower=0, upper=1> correlated;
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
  real Intercept;
  vector[K] b;
  real<lower=0> sigma;
  vector<lower=0>[M] sd_g;
  array[correlated] cholesky_factor_corr[M] L_g;
  matrix[M, J] z_g;
}
transformed parameters {
  matrix[J, M] r_g;
  if (correlated) {
    r_g = (diag_pre_multiply(sd_g, L_g[1]) * z_g)';
  } else {
    r_g = diag_pre_multiply(sd_g, z_g)';
  }
}
model {
  vector[N] mu = Intercept + Xc * b;
  for (m in 1 : M) {
    mu += r_g[g, m] .* Z[ : , m];
  }
  y ~ normal(mu, sigma);
  Intercept ~ normal(0, 50);
  b ~ normal(0, 5);
  sigma ~ normal(0, 3);
  sd_g ~ normal(0, 2);
  if (correlated) {
    L_g[1] ~ lkj_corr_cholesky(2);
  }
  to_vector(z_g) ~ std_normal();
}
