// The families of issue 31 written the way brms writes them (R/stan-likelihood.R and
// inst/chunks/fun_*.stan of paul-buerkner/brms), one program for all of them: the data
// switch `family` picks the likelihood, `link` the inverse link of bernoulli and
// binomial. Each is y | trials(n) ~ 1 + X + (1 | g): X centered in transformed data, a
// varying intercept per group (brms's r_1_1 = sd_1[1] * z_1[1], added row by row), the
// inverse link applied to mu where Stan has no density on the link scale, and the
// families whose densities are brms's functions (zero-inflated, hurdle, ordinal) one row
// at a time. The priors are the ones stanbhm states for these models, their data-scaled
// arguments passed as data. The reference tests/test_families.py compares stanbhm's
// generated programs with.
functions {
  // brms's zero_inflated_poisson_log_lpmf: an excess zero (probability zi) or a Poisson
  // count of log rate eta
  real zero_inflated_poisson_log_lpmf(int y, real eta, real zi) {
    if (y == 0) {
      return log_sum_exp(bernoulli_lpmf(1 | zi),
                         bernoulli_lpmf(0 | zi) + poisson_log_lpmf(0 | eta));
    }
    return bernoulli_lpmf(0 | zi) + poisson_log_lpmf(y | eta);
  }
  // brms's zero_inflated_neg_binomial_log_lpmf: an excess zero or an NB2 count of log
  // mean eta and shape phi
  real zero_inflated_neg_binomial_log_lpmf(int y, real eta, real phi, real zi) {
    if (y == 0) {
      return log_sum_exp(bernoulli_lpmf(1 | zi),
                         bernoulli_lpmf(0 | zi)
                         + neg_binomial_2_log_lpmf(0 | eta, phi));
    }
    return bernoulli_lpmf(0 | zi) + neg_binomial_2_log_lpmf(y | eta, phi);
  }
  // brms's hurdle_poisson_log_lpmf: 0 with probability hu, else a Poisson count given
  // that it is above 0
  real hurdle_poisson_log_lpmf(int y, real eta, real hu) {
    if (y == 0) {
      return bernoulli_lpmf(1 | hu);
    }
    return bernoulli_lpmf(0 | hu) + poisson_log_lpmf(y | eta)
           - log1m_exp(-exp(eta));
  }
  // brms's hurdle_neg_binomial_log_lpmf: P(0) of the count part is
  // (phi / (mu + phi))^phi
  real hurdle_neg_binomial_log_lpmf(int y, real eta, real phi, real hu) {
    if (y == 0) {
      return bernoulli_lpmf(1 | hu);
    }
    return bernoulli_lpmf(0 | hu) + neg_binomial_2_log_lpmf(y | eta, phi)
           - log1m((phi / (exp(eta) + phi)) ^ phi);
  }
}
data {
  // 1 zero_inflated_poisson, 2 zero_inflated_negbinomial, 3 hurdle_poisson,
  // 4 hurdle_negbinomial, 5 beta, 6 bernoulli, 7 binomial, 8 cumulative("logit")
  int<lower=1, upper=8> family;
  int<lower=1, upper=2> link; // bernoulli and binomial: 1 probit, 2 cloglog
  int<lower=1> N; // rows
  array[N] int Y; // the outcome of a discrete family (0 for beta)
  vector[N] Y_real; // beta's outcome (anything for the others)
  array[N] int<lower=0> trials; // binomial's trials
  int<lower=1> K; // predictors, no intercept column
  matrix[N, K] X;
  int<lower=1> N_1; // levels of the grouping factor
  int<lower=1> M_1; // effects per level: 1, the intercept
  array[N] int<lower=1, upper=N_1> J_1; // level of each row
  vector[N] Z_1_1; // the intercept's column: 1
  int<lower=1> nthres; // cutpoints of the ordinal outcome (1 for the others)
  real prior_location_Intercept;
  real<lower=0> prior_scale_Intercept;
  vector<lower=0>[K] prior_scale_b;
  real<lower=0> prior_scale_sd;
}
transformed data {
  int ordinal = family == 8;
  int zero_inflated = family == 1 || family == 2;
  int hurdle = family == 3 || family == 4;
  int negbinomial = family == 2 || family == 4;
  int proportion = family == 5;
  vector[K] means_X;
  matrix[N, K] Xc;
  for (k in 1 : K) {
    means_X[k] = mean(X[ : , k]);
    Xc[ : , k] = X[ : , k] - means_X[k];
  }
}
parameters {
  // the intercept at the predictors' means; the cumulative family's cutpoints
  ordered[nthres] Intercept;
  vector[K] b;
  vector<lower=0>[M_1] sd_1;
  array[M_1] vector[N_1] z_1;
  array[negbinomial] real<lower=0> shape; // brms's name of the NB2 precision
  array[proportion] real<lower=0> phi; // beta precision
  array[zero_inflated] real<lower=0, upper=1> zi;
  array[hurdle] real<lower=0, upper=1> hu;
}
transformed parameters {
  vector[N_1] r_1_1 = sd_1[1] * z_1[1];
}
model {
  // an ordinal model's mu has no intercept: the cutpoints are measured against it
  vector[N] mu = rep_vector(0.0, N);
  if (!ordinal) {
    mu += Intercept[1];
  }
  mu += Xc * b;
  for (n in 1 : N) {
    mu[n] += r_1_1[J_1[n]] * Z_1_1[n];
  }
  if (family == 1) {
    for (n in 1 : N) {
      target += zero_inflated_poisson_log_lpmf(Y[n] | mu[n], zi[1]);
    }
  } else if (family == 2) {
    for (n in 1 : N) {
      target += zero_inflated_neg_binomial_log_lpmf(Y[n] | mu[n], shape[1], zi[1]);
    }
  } else if (family == 3) {
    for (n in 1 : N) {
      target += hurdle_poisson_log_lpmf(Y[n] | mu[n], hu[1]);
    }
  } else if (family == 4) {
    for (n in 1 : N) {
      target += hurdle_neg_binomial_log_lpmf(Y[n] | mu[n], shape[1], hu[1]);
    }
  } else if (family == 5) {
    mu = inv_logit(mu);
    target += beta_lpdf(Y_real | mu .* phi[1], (1 - mu) .* phi[1]);
  } else if (family == 6 || family == 7) {
    if (link == 1) {
      mu = Phi(mu);
    } else {
      mu = inv_cloglog(mu);
    }
    if (family == 6) {
      target += bernoulli_lpmf(Y | mu);
    } else {
      target += binomial_lpmf(Y | trials, mu);
    }
  } else {
    for (n in 1 : N) {
      target += ordered_logistic_lpmf(Y[n] | mu[n], Intercept);
    }
  }
  // the priors
  if (ordinal) {
    target += student_t_lpdf(Intercept | 3, 0, 2.5);
  } else {
    target += student_t_lpdf(Intercept[1] | 3, prior_location_Intercept,
                             prior_scale_Intercept);
  }
  target += normal_lpdf(b | 0, prior_scale_b);
  target += student_t_lpdf(sd_1 | 3, 0, prior_scale_sd)
            - student_t_lccdf(0 | 3, 0, prior_scale_sd);
  target += std_normal_lpdf(z_1[1]);
  target += gamma_lpdf(shape | 2, 0.1);
  target += gamma_lpdf(phi | 0.01, 0.01);
  target += beta_lpdf(zi | 1, 1);
  target += beta_lpdf(hu | 1, 1);
}
