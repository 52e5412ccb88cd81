"""Turn user-supplied names into safe, readable Stan identifiers.

Every name that reaches a generated Stan program from user data (column names, factor
levels, formula terms such as ``x:z`` or ``C(g)[T.b]``) goes through `stan_identifier`.
Two goals pull in different directions and both matter:

* **Safety.** The program is text we paste together, so a column called
  ``x; target += 1e9`` must never reach it verbatim. The output is restricted to
  ``[A-Za-z][A-Za-z0-9_]*``, which cannot express anything but an identifier.
* **Readability.** Statisticians read the generated code and match parameter names
  against their formula, so we keep case and as much of the original spelling as
  possible (``b_log_x`` for ``log(x)``) instead of opaque ``b[7]`` or hashes.

The function is pure: it never mutates `taken`, so callers decide when a name counts as
used (typically ``taken.add(name)`` right after the call).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

__all__ = [
    "STAN_FUNCTION_NAMES",
    "STAN_RESERVED",
    "Namespace",
    "is_stan_identifier",
    "stan_identifier",
]

#: Words stanc rejects as identifiers. Besides the language keywords this includes the
#: C++ words stanc 2.39 still refuses (checked against its error "clashes with reserved
#: keyword") and ``jacobian``, which became a keyword in recent Stan releases.
STAN_RESERVED: frozenset[str] = frozenset(
    {
        # control flow and literals
        "for", "in", "while", "repeat", "until", "if", "then", "else", "true", "false",
        "return", "break", "continue", "void",
        # statements that look like functions
        "target", "jacobian", "profile", "print", "reject", "fatal_error",
        # program blocks
        "functions", "model", "data", "parameters", "quantities", "transformed",
        "generated",
        # types
        "int", "real", "complex", "vector", "row_vector", "matrix", "array", "tuple",
        "complex_vector", "complex_row_vector", "complex_matrix",
        "simplex", "ordered", "positive_ordered", "unit_vector",
        "sum_to_zero_vector", "sum_to_zero_matrix",
        "column_stochastic_matrix", "row_stochastic_matrix",
        "cholesky_factor_cov", "cholesky_factor_corr", "cov_matrix", "corr_matrix",
        # declaration modifiers
        "lower", "upper", "offset", "multiplier",
        # internal names and C++ words stanc refuses
        "lp__", "lp_accum__", "auto", "struct", "var", "export", "extern", "static",
        "typedef",
    }
)  # fmt: skip

#: Stan library functions a variable should not shadow. Recent stanc accepts a variable
#: called ``normal`` next to the function ``normal()``, but older CmdStan installations
#: (which stanbhm uses when they are present) reject it, and a reader seeing
#: ``normal ~ normal(...)`` is confused either way; these are the names a column is
#: likely to have and the functions generated code is likely to call.
STAN_FUNCTION_NAMES: frozenset[str] = frozenset(
    {
        # distributions stanbhm emits or accepts in priors
        "normal", "student_t", "cauchy", "exponential", "gamma", "inv_gamma", "lognormal",
        "uniform", "double_exponential", "logistic", "beta", "weibull", "bernoulli",
        "binomial", "poisson", "neg_binomial", "neg_binomial_2", "lkj_corr_cholesky",
        "std_normal", "multi_normal", "normal_id_glm", "bernoulli_logit", "poisson_log",
        "bernoulli_logit_glm", "poisson_log_glm", "neg_binomial_2_log", "binomial_logit",
        # elementary math
        "e", "pi", "abs", "fabs", "exp", "log", "log1p", "expm1", "log2", "log10", "sqrt",
        "square", "inv", "pow", "logit", "inv_logit", "min", "max", "sum", "mean", "sd",
        "variance", "round", "floor", "ceil", "step", "fmin", "fmax",
        # containers
        "size", "rows", "cols", "num_elements", "rep_vector", "rep_row_vector",
        "rep_matrix", "rep_array", "to_vector", "to_row_vector", "to_matrix", "to_array_1d",
        "to_int", "append_row", "append_col", "segment", "head", "tail", "dot_product",
        "rows_dot_product", "columns_dot_product", "diag_matrix", "diag_pre_multiply",
        "multiply_lower_tri_self_transpose", "reduce_sum", "not_a_number",
        "positive_infinity", "negative_infinity", "machine_precision",
    }
)  # fmt: skip

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_]+")


def is_stan_identifier(name: str) -> bool:
    """Whether `name` is usable as-is: well formed, not reserved, not ending in ``__``."""
    return (
        _IDENTIFIER.fullmatch(name) is not None
        and not name.endswith("__")
        and name not in STAN_RESERVED
        and name not in STAN_FUNCTION_NAMES
    )


def stan_identifier(raw: str, *, taken: set[str] | None = None, prefix: str = "") -> str:
    """Return a readable, valid Stan identifier for `raw` (with `prefix` in front).

    The steps, in order:

    1. ``prefix + raw`` is NFKD-normalized and non-ASCII characters are dropped, so
       ``ñame`` becomes ``name`` rather than ``_ame`` (accents are decoration; the base
       letter is what readers recognize).
    2. Every run of characters outside ``[A-Za-z0-9_]`` becomes one ``_`` (``x:z`` ->
       ``x_z``, ``C(g)[T.b]`` -> ``C_g_T_b``) and leading/trailing ``_`` are stripped:
       Stan identifiers may not start with ``_`` and may not end with ``__``.
    3. An empty result becomes ``v``; one starting with a digit gets ``v_`` in front.
    4. Reserved words and shadow-prone function names get a trailing ``_`` (``for`` ->
       ``for_``), which keeps them recognizable.
    5. If the name is in `taken`, ``_2``, ``_3``, ... is appended until it is not.
       Matching is case-sensitive, as Stan's is.

    Case is preserved: ``X`` and ``x`` are different columns and different parameters.
    """
    if not isinstance(raw, str):
        raw = str(raw)
    text = unicodedata.normalize("NFKD", prefix + raw)
    text = text.encode("ascii", "ignore").decode("ascii")
    text = _INVALID_RUN.sub("_", text).strip("_")
    if not text:
        text = "v"
    elif text[0].isdigit():
        text = f"v_{text}"
    if text in STAN_RESERVED or text in STAN_FUNCTION_NAMES:
        text = f"{text}_"
    if taken and text in taken:
        # An escaped keyword already ends in "_"; "for_2" reads better than "for__2".
        stem = text.rstrip("_")
        k = 2
        while f"{stem}_{k}" in taken:
            k += 1
        text = f"{stem}_{k}"
    return text


class Namespace:
    """The identifiers of one program: template names are reserved first, then each user
    term claims a stem whose every derived name (``N_g``, ``J_g``, ``r_g``...) is free.

    This is what keeps a factor called ``obs`` from producing ``N_obs`` next to the
    template's own ``N_obs``: the factor becomes ``obs_f`` and the header says so.
    """

    def __init__(self, reserved: Iterable[str]) -> None:
        self.taken: set[str] = set(reserved)

    def claim(self, raw: str, derived: Callable[[str], Iterable[str]]) -> str:
        """A readable stem for `raw` whose derived names are all free; claims them."""
        base = stan_identifier(raw)
        stem, k = base, 1
        while any(name in self.taken for name in derived(stem)):
            # "_f" (factor), not a bare number: obs_2 beside N_obs (observed rows) reads
            # as one more observed-rows count
            stem = f"{base.rstrip('_')}_f" + (str(k) if k > 1 else "")
            k += 1
        self.taken.update(derived(stem))
        return stem
