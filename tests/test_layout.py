"""Long lines laid out as stanc --auto-format lays them out (`stanbhm.layout`); the golden
programs check the same against stanc itself (tests/test_render.py), these pin each rule."""

from __future__ import annotations

from stanbhm.layout import call, returned, signature, statement, wrap


def test_a_call_that_fits_stays_on_one_line() -> None:
    assert wrap("  f(", ["a", "b"], ");") == ["  f(a, b);"]
    assert statement("  x = ", "a + b", ";") == ["  x = a + b;"]


def test_a_long_call_breaks_after_the_last_argument_that_fits() -> None:
    args = ["partial_log_lik_lupmf", "row_index", "grainsize", "y", "Xc", "Intercept", "b",
            "r_g", "sigma", "J_g", "Z_g_with_a_long_name"]
    assert wrap("    target += reduce_sum(", args, ");") == [
        "    target += reduce_sum(partial_log_lik_lupmf, row_index, grainsize, y, Xc,",
        "                         Intercept, b, r_g, sigma, J_g,",
        "                         Z_g_with_a_long_name);"]


def test_a_long_expression_breaks_before_its_last_sum() -> None:
    assert statement("    ss_theta[ : , 2 : 23] = ",
                     "rep_vector(1, N_store) * b[2 : 23]' + to_matrix(r_store)[ : , 2 : 23]",
                     ";") == ["    ss_theta[ : , 2 : 23] = rep_vector(1, N_store) * b[2 : 23]'",
                              "                            + to_matrix(r_store)[ : , 2 : 23];"]


def test_a_long_call_statement_continues_under_its_parenthesis() -> None:
    assert statement("  lp = ", "normal_lpdf(y[i] | eta[i], sqrt(square(sigma) + "
                     "square(sd_respondent_long)))", ";") == [
        "  lp = normal_lpdf(y[i] | eta[i],",
        "                   sqrt(square(sigma) + square(sd_respondent_long)));"]


def test_signatures_and_returns() -> None:
    declared = ["array[] int slice", "int start", "int end", "vector y", "matrix Xc",
                "real Intercept", "vector b"]
    assert signature("  real partial_log_lik_lpmf(", declared, ") {") == [
        "  real partial_log_lik_lpmf(array[] int slice, int start, int end, vector y,",
        "                            matrix Xc, real Intercept, vector b) {"]
    longer = [*declared, "array[] int J_store_obs", "matrix Z_store_obs", "real sigma"]
    assert signature("  real partial_log_lik_lpmf(", longer, ") {")[1:3] == [
        "                            int start,", "                            int end,"]
    assert returned(("normal_id_glm_lupdf", ["y[start : end] | Xc[start : end]",
                                             "Intercept", "b", "sigma"])) == [
        "    return normal_id_glm_lupdf(y[start : end] | Xc[start : end], Intercept,",
        "             b, sigma);"]
    # a short name continues under its parenthesis, as stanc --auto-format writes it
    assert returned(("normal_lupdf", ["y[start : end] | eta[start : end]",
                                      "se_observed_rows_with_long_name[start : end]"])) == [
        "    return normal_lupdf(y[start : end] | eta[start : end],",
        "                        se_observed_rows_with_long_name[start : end]);"]


def test_a_long_named_call_continues_past_the_expression_start() -> None:
    """stanc 2.39 keeps a call's continuation under its parenthesis up to a name of 16
    characters, and from 17 on two columns past where the expression starts."""
    args = ["c", "aaaaaaaaaaaaaaaaaaaaaaaa", "b" * 52]
    assert call("  eta += ", "g" * 16, args, ";") == [
        "  eta += " + "g" * 16 + "(c, aaaaaaaaaaaaaaaaaaaaaaaa,", " " * 26 + "b" * 52 + ");"]
    assert call("  eta += ", "g" * 17, args, ";") == [
        "  eta += " + "g" * 17 + "(c, aaaaaaaaaaaaaaaaaaaaaaaa,", " " * 11 + "b" * 52 + ");"]
