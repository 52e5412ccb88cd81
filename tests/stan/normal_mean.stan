// Normal mean with known sigma and a conjugate normal prior, plus an
// independent positive parameter with an exponential(1) prior: both posteriors
// are known in closed form.
data {
  int<lower=0> N;
  vector[N] y;
  real<lower=0> sigma;
  real m0;
  real<lower=0> s0;
}
parameters {
  real mu;
  real<lower=0> tau;
}
model {
  mu ~ normal(m0, s0);
  y ~ normal(mu, sigma);
  tau ~ exponential(1);
}
generated quantities {
  real mu2 = 2 * mu;
  real y_new = normal_rng(mu, sigma);
}
