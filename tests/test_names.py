"""Tests for stan_identifier (stanbhm.names).

Its output is pasted into Stan programs, so the tests pin two things: exact, readable
results for typical names (users match them against their formula), and, for arbitrary
text, that nothing but a valid, non-reserved identifier can come out.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanbhm.names import (
    STAN_FUNCTION_NAMES,
    STAN_RESERVED,
    is_stan_identifier,
    stan_identifier,
)

VALID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# The keywords the brief lists explicitly; all must be escaped.
KEYWORDS = (
    "for in while repeat until if then else true false target functions model data "
    "parameters quantities transformed generated int real complex vector row_vector matrix "
    "array tuple simplex ordered positive_ordered cholesky_factor_cov cholesky_factor_corr "
    "cov_matrix corr_matrix unit_vector sum_to_zero_vector lower upper offset multiplier "
    "void return break continue profile print reject fatal_error"
).split()

HOSTILE = [
    "x; target += 1e9",
    "for",
    "ñame",
    "1x",
    "a b",
    "x__",
    "",
    "lp__",
    "__",
    "_",
    "+=",
    "}\nmodel {",
    "日本語",
    "y = 1;",
    "-1.5e3",
    "target",
    "TARGET",
]


def assert_safe(name: str) -> None:
    assert VALID.fullmatch(name), name
    assert not name.endswith("__")
    assert name not in STAN_RESERVED
    assert name not in STAN_FUNCTION_NAMES
    for bad in (";", " ", "+", "=", "{", "}", "\n"):
        assert bad not in name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("x; target += 1e9", "x_target_1e9"),
        ("for", "for_"),
        ("ñame", "name"),
        ("Ñandú", "Nandu"),
        ("1x", "v_1x"),
        ("a b", "a_b"),
        ("x__", "x"),
        ("", "v"),
        ("lp__", "lp"),
        ("x:z", "x_z"),
        ("log(x)", "log_x"),
        ("C(g)[T.b]", "C_g_T_b"),
        ("_private", "private"),
        ("School", "School"),  # case is kept
        ("x__y", "x__y"),  # "__" inside a name is legal Stan
        ("normal", "normal_"),
        ("日本語", "v"),
        ("  ", "v"),
    ],
)
def test_examples(raw: str, expected: str) -> None:
    assert stan_identifier(raw) == expected


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_names_are_safe(raw: str) -> None:
    name = stan_identifier(raw)
    assert_safe(name)
    assert is_stan_identifier(name)
    if raw:
        assert name != raw or is_stan_identifier(raw)


def test_hostile_string_never_survives() -> None:
    name = stan_identifier("x; target += 1e9")
    assert "target +=" not in name
    assert ";" not in name


@pytest.mark.parametrize("word", KEYWORDS)
def test_keywords_are_escaped(word: str) -> None:
    assert stan_identifier(word) == f"{word}_"
    assert word in STAN_RESERVED


@pytest.mark.parametrize("word", ["auto", "struct", "var", "export", "typedef", "jacobian"])
def test_words_stanc_refuses_are_escaped(word: str) -> None:
    # Found by asking stanc 2.39 to accept `real <word>;` in a data block.
    assert stan_identifier(word) == f"{word}_"


def test_prefix_is_validated_with_the_name() -> None:
    assert stan_identifier("x", prefix="b_") == "b_x"
    assert stan_identifier("1x", prefix="b_") == "b_1x"
    assert stan_identifier("x:z", prefix="b_") == "b_x_z"
    assert stan_identifier("", prefix="b_") == "b"
    assert stan_identifier("__", prefix="sd_") == "sd_"  # sd() is a Stan function
    assert stan_identifier("__", prefix="z_") == "z"
    assert stan_identifier("school", prefix="sd_") == "sd_school"
    # a prefix can turn a keyword into an ordinary name
    assert stan_identifier("for", prefix="b_") == "b_for"


def test_prefix_itself_is_sanitized() -> None:
    assert stan_identifier("x", prefix="1 ") == "v_1_x"


def test_deduplication() -> None:
    taken = {"x", "x_2"}
    assert stan_identifier("x", taken=taken) == "x_3"
    assert stan_identifier("y", taken=taken) == "y"
    assert stan_identifier("x:", taken={"x"}) == "x_2"
    # an escaped keyword is numbered without doubling the underscore
    assert stan_identifier("for", taken={"for_"}) == "for_2"
    assert stan_identifier("", taken={"v"}) == "v_2"
    assert stan_identifier("x", prefix="b_", taken={"b_x"}) == "b_x_2"


def test_taken_is_not_mutated() -> None:
    taken = {"x"}
    stan_identifier("x", taken=taken)
    assert taken == {"x"}


def test_deduplication_is_case_sensitive() -> None:
    assert stan_identifier("X", taken={"x"}) == "X"


def test_non_string_input_is_converted() -> None:
    assert stan_identifier(3) == "v_3"  # type: ignore[arg-type]


def test_is_stan_identifier() -> None:
    assert is_stan_identifier("b_x")
    assert not is_stan_identifier("for")
    assert not is_stan_identifier("x__")
    assert not is_stan_identifier("_x")
    assert not is_stan_identifier("1x")
    assert not is_stan_identifier("a b")


@settings(max_examples=300, deadline=None)
@given(
    raw=st.text(max_size=30),
    prefix=st.sampled_from(["", "b_", "sd_", "z_"]),
    taken=st.sets(st.text(alphabet="abx_2", max_size=4), max_size=5),
)
def test_any_text_gives_a_safe_fresh_identifier(raw: str, prefix: str, taken: set[str]) -> None:
    name = stan_identifier(raw, prefix=prefix, taken=taken)
    assert_safe(name)
    assert name not in taken


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,10}(_[A-Za-z0-9]{1,5}){0,3}", fullmatch=True))
def test_valid_names_are_kept(raw: str) -> None:
    if raw in STAN_RESERVED or raw in STAN_FUNCTION_NAMES:
        assert stan_identifier(raw) == f"{raw}_"
    else:
        assert stan_identifier(raw) == raw
