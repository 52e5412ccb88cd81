// A program with `profile` blocks (for profile_file) and a matrix generated
// quantity with known means 10 * i + j (for the summary's row-major order).
parameters {
  real mu;
}
model {
  profile("prior") {
    mu ~ normal(0, 1);
  }
}
generated quantities {
  matrix[2, 3] m;
  for (i in 1:2) {
    for (j in 1:3) {
      m[i, j] = normal_rng(10 * i + j, 1);
    }
  }
}
