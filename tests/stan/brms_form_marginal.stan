// y ~ 1 + X + (1 | g) + (0 + Z | g), gaussian, in brms's form (X centered in the
// population part only, Z as given, the slopes non-centered), with the level
// intercepts integrated out by hand: each level's rows are multivariate normal with
// covariance sigma^2 I + sd_int^2 11'. Rows come sorted by level.
data {
  int<lower=1> N;
  vector[N] y;
  int<lower=1> K;
  matrix[N, K] X;
  int<lower=1> J;
  array[N] int<lower=1, upper=J> g;
  array[J + 1] int<lower=1> start; // where each level's rows start
  int<lower=1> M;
  matrix[N, M] Z;
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
  real<lower=0> sd_int;
  vector<lower=0>[M] sd_g;
  matrix[M, J] z_g;
}
transformed parameters {
  matrix[J, M] r_g = diag_pre_multiply(sd_g, z_g)';
}
model {
  vector[N] mu = Intercept + Xc * b;
  for (m in 1 : M) {
    mu += r_g[g, m] .* Z[ : , m];
  }
  for (j in 1 : J) {
    int n = start[j + 1] - start[j];
    array[n] int rows = linspaced_int_array(n, start[j], start[j + 1] - 1);
    matrix[n, n] cov = add_diag(rep_matrix(square(sd_int), n, n),
                                square(sigma));
    y[rows] ~ multi_normal(mu[rows], cov);
  }
  Intercept ~ normal(0, 50);
  b ~ normal(0, 5);
  sigma ~ normal(0, 3);
  sd_int ~ normal(0, 2);
  sd_g ~ normal(0, 2);
  to_vector(z_g) ~ std_normal();
}
