"""Tests for the formula parser (stanbhm.formula).

The parser is the only place where users' hand-typed text meets the package, so the
tests pin exact parsed fields for every supported construct, exact messages for a few
errors (the caret line is part of the contract), and use hypothesis to check that no
input, however garbled, escapes as anything but a FormulaError.
"""

from __future__ import annotations

import dataclasses
import operator
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stanbhm.formula import (
    INTERCEPT,
    Formula,
    FormulaError,
    GroupTerm,
    parse_formula,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def group(*effects: str, factors: tuple[str, ...] = ("g",), correlated: bool = True) -> GroupTerm:
    """Shorthand for an expected GroupTerm; intercept is implied by the effects."""
    return GroupTerm(
        effects=effects,
        intercept=INTERCEPT in effects,
        factors=factors,
        correlated=correlated,
    )


def fields(f: Formula) -> dict[str, object]:
    """All parsed fields except the original text, for whole-object comparisons."""
    return {k.name: getattr(f, k.name) for k in dataclasses.fields(f) if k.name != "text"}


# --------------------------------------------------------------------------- response


def test_simple_fixed_effects() -> None:
    f = Formula("y ~ x + z")
    assert fields(f) == {
        "response": "y",
        "se": None,
        "trials": None,
        "fixed": "1 + x + z",
        "intercept": True,
        "offset": None,
        "groups": (),
        "cens": None,
        "y2": None,
        "weights": None,
        "trunc": None,
    }
    assert f.text == "y ~ x + z"


def test_known_standard_error() -> None:
    f = Formula("y | se(sigma) ~ 1 + (1 | school)")
    assert f.response == "y"
    assert f.se == "sigma"
    assert f.trials is None
    assert f.fixed == "1"
    assert f.intercept is True
    assert f.groups == (group(INTERCEPT, factors=("school",)),)


def test_binomial_trials() -> None:
    f = Formula("k | trials(n) ~ x")
    assert (f.response, f.trials, f.se, f.fixed) == ("k", "n", None, "1 + x")


def test_trials_constant_and_expression() -> None:
    assert Formula("k | trials(10) ~ x").trials == "10"
    assert Formula("y | se( sqrt(v) ) ~ x").se == "sqrt(v)"


def test_several_addition_terms() -> None:
    f = Formula("y | se(s) + trials(n) ~ x")
    assert (f.se, f.trials) == ("s", "n")
    g = Formula("y | trials(n) + se(s) ~ x")
    assert (g.se, g.trials) == ("s", "n")


def test_transformed_response() -> None:
    f = Formula("log(y) ~ x")
    assert f.response == "log(y)"


# --------------------------------------------------------------------------- fixed part


@pytest.mark.parametrize(
    ("text", "fixed", "intercept"),
    [
        ("y ~ x", "1 + x", True),
        ("y ~ x*z", "1 + x*z", True),
        ("y ~ x:z", "1 + x:z", True),
        ("y ~ x + x:z", "1 + x + x:z", True),
        ("y ~ 1 + x", "1 + x", True),
        ("y ~ 0 + x", "0 + x", False),
        ("y ~ x + 0", "0 + x", False),
        ("y ~ x - 1", "0 + x", False),
        ("y ~ -1 + x", "0 + x", False),
        ("y ~ 0 + x + 1", "1 + x", True),  # last word wins, as in formulaic and R
        ("y ~ x - 0", "1 + x", True),  # R: "- 0" means "+ 1"
        ("y ~ 1", "1", True),
        ("y ~ 0", "0", False),
        ("y ~ (x + z)^2", "1 + (x + z)^2", True),
        ("y ~ a/b", "1 + a/b", True),
        ("y ~ x*z - z", "1 + x*z - z", True),
    ],
)
def test_fixed_part_and_intercept(text: str, fixed: str, intercept: bool) -> None:
    f = Formula(text)
    assert (f.fixed, f.intercept) == (fixed, intercept)
    assert f.groups == ()


def test_transforms_are_kept_verbatim_for_formulaic() -> None:
    f = Formula("y ~ C(x) + log(z) + scale(w) + I(x**2)")
    assert f.fixed == "1 + C(x) + log(z) + scale(w) + I(x**2)"


def test_call_arguments_may_contain_brackets_and_quotes() -> None:
    f = Formula("y ~ C(x, levels=['(', ')', '|']) + {z ** 2}")
    assert f.fixed == "1 + C(x, levels=['(', ')', '|']) + {z ** 2}"
    assert f.groups == ()


def test_only_group_terms_keeps_default_intercept() -> None:
    assert (Formula("y ~ (1 | g)").fixed, Formula("y ~ (1 | g)").intercept) == (
        "1",
        True,
    )
    f = Formula("y ~ 0 + (1 | g)")
    assert (f.fixed, f.intercept) == ("0", False)
    assert f.groups == (group(INTERCEPT),)


def test_spacing_is_normalized() -> None:
    f = Formula("y~x*z+log( z )+(1|g)")
    assert f.fixed == "1 + x*z + log( z )"


def test_multiline_formula() -> None:
    f = Formula("y ~\n    x +\n\t(1 | g)\n")
    assert (f.fixed, f.groups) == ("1 + x", (group(INTERCEPT),))


# --------------------------------------------------------------------------- offset


def test_offset() -> None:
    f = Formula("y ~ x + offset(log(exposure)) + (1 | g)")
    assert f.offset == "log(exposure)"
    assert f.fixed == "1 + x"
    assert f.groups == (group(INTERCEPT),)


def test_offset_first_and_alone() -> None:
    assert Formula("y ~ offset(o) + x").offset == "o"
    f = Formula("y ~ offset(o)")
    assert (f.offset, f.fixed, f.intercept) == ("o", "1", True)


# --------------------------------------------------------------------------- group terms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("y ~ (1 | g)", group(INTERCEPT)),
        ("y ~ (1 + x | g)", group(INTERCEPT, "x")),
        ("y ~ (x | g)", group(INTERCEPT, "x")),  # lme4: intercept implied
        ("y ~ (1 + x || g)", group(INTERCEPT, "x", correlated=False)),
        ("y ~ (x - 1 | g)", group("x")),
        ("y ~ (0 + x | g)", group("x")),
        ("y ~ (-1 + x | g)", group("x")),
        ("y ~ (0 + x + z || g)", group("x", "z", correlated=False)),
        ("y ~ (1 + x:z | g)", group(INTERCEPT, "x:z")),
        ("y ~ (1 + x*z | g)", group(INTERCEPT, "x", "z", "x:z")),
        ("y ~ (x + x + z:x + x:z | g)", group(INTERCEPT, "x", "z:x")),
        ("y ~ (1 + x*z - z | g)", group(INTERCEPT, "x", "x:z")),
        ("y ~ (1 + log(x) | g)", group(INTERCEPT, "log(x)")),
        ("y ~ (1 | a:b)", group(INTERCEPT, factors=("a", "b"))),
    ],
)
def test_single_group_term(text: str, expected: GroupTerm) -> None:
    assert Formula(text).groups == (expected,)


def test_group_term_name() -> None:
    assert group(INTERCEPT, factors=("school",)).name == "school"
    assert group(INTERCEPT, factors=("a", "b")).name == "a:b"


def test_group_term_str_is_lme4_syntax() -> None:
    f = Formula("y ~ (1 + x || g) + (0 + x | `my g`)")
    assert [str(g) for g in f.groups] == ["(1 + x || g)", "(0 + x | `my g`)"]


def test_nested_grouping_expands() -> None:
    f = Formula("y ~ (1 | a/b)")
    assert f.groups == (
        group(INTERCEPT, factors=("a",)),
        group(INTERCEPT, factors=("a", "b")),
    )
    assert [g.name for g in f.groups] == ["a", "a:b"]


def test_deeper_nesting_keeps_effects_and_bar() -> None:
    f = Formula("y ~ (1 + x || a/b:c/d)")
    assert [g.factors for g in f.groups] == [("a",), ("a", "b", "c"), ("a", "b", "c", "d")]
    assert all(g.effects == (INTERCEPT, "x") and not g.correlated for g in f.groups)


def test_crossed_terms() -> None:
    f = Formula("y ~ x + (1 | a) + (1 + x | b) + (0 + z || c) + (1 | d)")
    assert f.groups == (
        group(INTERCEPT, factors=("a",)),
        group(INTERCEPT, "x", factors=("b",)),
        group("z", factors=("c",), correlated=False),
        group(INTERCEPT, factors=("d",)),
    )
    assert f.fixed == "1 + x"


def test_same_factor_twice_is_allowed() -> None:
    f = Formula("y ~ (1 | g) + (0 + x || g)")
    assert f.groups == (group(INTERCEPT), group("x", correlated=False))


def test_group_term_first_then_fixed() -> None:
    f = Formula("y ~ (1 | g) + x")
    assert (f.fixed, f.groups) == ("1 + x", (group(INTERCEPT),))


# --------------------------------------------------------------------------- names


def test_backtick_names() -> None:
    f = Formula("`my y` ~ `x 1` + (1 + `a-b` | `my group`) + offset(`log n`)")
    assert f.response == "`my y`"
    assert f.fixed == "1 + `x 1`"
    assert f.offset == "`log n`"
    assert f.groups == (group(INTERCEPT, "`a-b`", factors=("my group",)),)
    assert f.groups[0].name == "my group"


def test_backticked_identifier_is_written_bare() -> None:
    f = Formula("`y` ~ `x` + (1 | `g`)")
    assert (f.response, f.fixed, f.groups[0].factors) == ("y", "1 + x", ("g",))


def test_column_called_intercept_is_quoted_in_effects() -> None:
    f = Formula("y ~ (1 + Intercept | g)")
    assert f.groups[0].effects == (INTERCEPT, "`Intercept`")


def test_unicode_identifiers() -> None:
    f = Formula("ÿ ~ β + (1 | école)")
    assert (f.response, f.fixed, f.groups[0].factors) == ("ÿ", "1 + β", ("école",))


# --------------------------------------------------------------------------- the object


def test_formula_value_semantics() -> None:
    a = Formula("y ~ x + (1|g)")
    b = parse_formula("y ~ x   +   ( 1 | g )")
    assert isinstance(b, Formula)
    assert a == b
    assert hash(a) == hash(b)
    assert a != Formula("y ~ x + (1||g)")
    assert repr(a) == "Formula('y ~ x + (1|g)')"
    assert str(a) == "y ~ x + (1|g)"


def test_formula_is_read_only() -> None:
    f = Formula("y ~ x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.response = "z"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.text = "q"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Formula("y ~ (1 | g)").groups[0].correlated = False  # type: ignore[misc]


def test_formula_pickles() -> None:
    f = Formula("y | se(s) ~ x + (1 | a/b)")
    g = pickle.loads(pickle.dumps(f))
    assert g == f and g.text == f.text


# --------------------------------------------------------------------------- errors


def test_error_message_exact_unexpected_paren() -> None:
    with pytest.raises(FormulaError) as info:
        Formula("y ~ x + )")
    assert str(info.value) == ("unexpected ')' at position 9 in formula:\n  y ~ x + )\n          ^")
    assert info.value.reason == "unexpected ')'"
    assert info.value.formula == "y ~ x + )"
    assert (info.value.index, info.value.position) == (8, 9)


def test_error_message_exact_missing_factor() -> None:
    with pytest.raises(FormulaError) as info:
        Formula("y ~ (1 | )")
    assert str(info.value) == (
        "missing grouping factor after '|' at position 10 in formula:\n  y ~ (1 | )\n           ^"
    )


def test_error_message_exact_unknown_modifier() -> None:
    with pytest.raises(FormulaError) as info:
        Formula("y | sd(w) ~ x")
    assert str(info.value) == (
        "unknown response modifier 'sd()' (expected se(), trials(), cens(), weights() or "
        "trunc()) "
        "at position 5 in formula:\n  y | sd(w) ~ x\n      ^"
    )


def test_caret_stays_aligned_with_tabs_and_newlines() -> None:
    with pytest.raises(FormulaError) as info:
        Formula("y ~\tx +\n )")
    lines = str(info.value).splitlines()
    assert lines[1] == "  y ~ x +  )"
    assert lines[2].index("^") == lines[1].index(")")


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="more than one '~'"):
        Formula("y ~ x ~ z")


@pytest.mark.parametrize("value", [None, 3, b"y ~ x", ["y ~ x"]])
def test_non_string_input(value: object) -> None:
    with pytest.raises(FormulaError, match="formula must be a string") as info:
        Formula(value)  # type: ignore[arg-type]
    assert info.value.index is None


@pytest.mark.parametrize(
    ("text", "reason", "index"),
    [
        ("", "empty formula", 0),
        ("   ", "empty formula", 0),
        ("y", "missing '~'", 0),
        ("  x + z", "missing '~'", 2),
        ("y ~ x ~ z", "more than one '~'", 6),
        ("~ x", "missing response before '~'", 0),
        (" | se(s) ~ x", "the response must be", 1),
        ("y ~", "missing right-hand side after '~'", 3),
        ("y ~ ", "missing right-hand side after '~'", 4),
        ("y + z ~ x", "unexpected '+' after the response", 2),
        ("1 ~ x", "the response must be", 0),
        ("y | foo(s) ~ x", "unknown response modifier 'foo()'", 4),
        ("y | s ~ x", "expected se(), trials(), cens(), weights() or trunc()", 4),
        ("y | se(s) + se(t) ~ x", "'se()' given twice", 12),
        ("y | se() ~ x", "se() needs an argument", 7),
        ("y | trials(n, m) ~ x", "trials() takes exactly one argument", 12),
        ("y | se(s) | trials(n) ~ x", "unexpected '|' after the response", 10),
        ("y ~ x +", "unexpected end of formula", 7),
        ("y ~ x + )", "unexpected ')'", 8),
        ("y ~ x)", "unexpected ')'", 5),
        ("y ~ (x", "unclosed '('", 4),
        ("y ~ (1 | g", "unclosed '('", 4),
        ("y ~ log(x", "unclosed '('", 7),
        ("y ~ C(x, ']'", "unclosed '('", 5),
        ("y ~ C(x, ']) + z", "unclosed quote '", 9),
        ("y ~ f(x]", "']' does not match '('", 7),
        ("y ~ ()", "empty parentheses", 4),
        ("y ~ ( | g)", "empty group term", 6),
        ("y ~ (|| g)", "empty group term", 5),
        ("y ~ (1 | )", "missing grouping factor after '|'", 9),
        ("y ~ (1 || )", "missing grouping factor after '||'", 10),
        ("y ~ (1 |", "missing grouping factor after '|'", 8),
        ("y ~ (1 | 2)", "the grouping factor must be a variable name", 9),
        ("y ~ (1 | f(g))", "the grouping factor must be a variable name", 9),
        ("y ~ (1 | a:)", "the grouping factor must be a variable name", 11),
        ("y ~ (1 | a + b)", "unexpected '+' in grouping factor", 11),
        ("y ~ (1 | a/a)", "grouping variable 'a' repeated", 11),
        ("y ~ (1 | a:b/a)", "grouping variable 'a' repeated", 13),
        ("y ~ x | g", "'|' outside parentheses", 6),
        ("y ~ x + 1 || g", "'||' outside parentheses", 10),
        ("y ~ (x + z | g | h)", "unexpected '|' in grouping factor", 15),
        ("y ~ (0 | g)", "group term has no effects", 4),
        ("y ~ (1 - 1 | g)", "group term has no effects", 4),
        ("y ~ (x - x - 1 | g)", "group term has no effects", 4),
        ("y ~ (2 | g)", "only '1', '0' and '- 1'", 5),
        ("y ~ (x - 0 | g)", "only '1', '0' and '- 1'", 7),
        ("y ~ (x/z | g)", "operator '/' is not supported in a group term", 6),
        ("y ~ (x^2 | g)", "operator '^' is not supported in a group term", 6),
        ("y ~ (x:2 | g)", "a number cannot be part of an interaction", 7),
        ("y ~ ((x - 1):z | g)", "only added variables may appear inside", 8),
        ("y ~ ((1 | h) | g)", "a group term cannot appear inside another", 5),
        ("y ~ (offset(o) | g)", "offset() cannot appear in a group term", 5),
        ("y ~ x:(1 | g)", "a group term must be a separate term", 6),
        ("y ~ ((1 | g))", "a group term must be a separate term", 5),
        ("y ~ x - (1 | g)", "a group term cannot be removed", 6),
        ("y ~ x - offset(o)", "offset() cannot be removed", 6),
        ("y ~ offset(a) + offset(b)", "only one offset() term", 16),
        ("y ~ x:offset(o)", "offset() must be a separate term", 6),
        ("y ~ offset()", "offset() needs an argument", 11),
        ("y ~ x $ z", "invalid character '$'", 6),
        ("y ~ x, z", "invalid character ','", 5),
        ("y ~ x.z", "invalid character '.'", 5),
        ("y ~ x\x00", "invalid character '\\x00'", 5),
        ("y ~ `x", "unclosed '`'", 4),
        ("y ~ ``", "empty name ``", 4),
        ("y ~ x z", "unexpected 'z' (missing '+' between terms?)", 6),
        ("y ~ log (x)", "unexpected '(' (no space is allowed", 8),
        ("y ~ x (1 | g)", "unexpected '(' (no space is allowed", 6),
        ("y ~ x + log(x +)", "invalid fixed-effect term", 8),
        ("y ~ x + 2", "invalid fixed-effect term", 8),
        ("y ~ x*", "unexpected end of formula", 6),
        ("y ~ (1 + log(x +) | g)", "invalid group-level term", 9),
        ("y | se(s +) ~ x", "invalid se()", 7),
        ("y ~ x + offset(a b)", "invalid offset()", 15),
        ("y ~ " + "(" * 60 + "x" + ")" * 60, "parentheses nested too deeply", 54),
    ],
)
def test_errors(text: str, reason: str, index: int) -> None:
    with pytest.raises(FormulaError) as info:
        Formula(text)
    err = info.value
    assert err.reason.startswith(reason), err.reason
    assert err.index == index, str(err)
    assert err.formula == text
    # The caret line always points at the reported index.
    assert str(err).splitlines()[-1] == "  " + " " * index + "^"


# --------------------------------------------------------------------------- properties

FORMULA_CHARS = "y~x+|()1:*/-0 ab"
ODD_CHARS = "`,.$'\"{}[]\t\n^se(trials)offset"


def _check_invariants(f: Formula) -> None:
    """What every successfully parsed formula must satisfy, whatever the input."""
    assert f.fixed.split(" ")[0] == ("1" if f.intercept else "0")
    assert f.response
    for g in f.groups:
        assert g.factors and all(g.factors)
        assert g.effects
        assert g.intercept == (INTERCEPT in g.effects)
        assert g.name == ":".join(g.factors)
        assert len(set(g.effects)) == len(g.effects)


@FAST
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(FORMULA_CHARS),
            st.sampled_from(FORMULA_CHARS),
            st.sampled_from(FORMULA_CHARS),
            st.sampled_from(ODD_CHARS),
            st.characters(),
        ),
        max_size=40,
    )
)
def test_random_text_parses_or_raises_formula_error(text: str) -> None:
    try:
        f = Formula(text)
    except FormulaError as err:
        assert err.formula == text
        assert err.index is None or 0 <= err.index <= len(text)
    else:
        _check_invariants(f)


TOKENS = [
    "y", "~", "x", "z", "+", "-", "(", ")", "|", "||", "1", "0", ":", "*", "/", "^",
    "se(s)", "trials(n)", "offset(o)", "log(x)", "`a b`", " ", " ",
]  # fmt: skip


@FAST
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_random_token_soup_parses_or_raises_formula_error(tokens: list[str]) -> None:
    # Token-level fuzzing reaches deep into the grammar far more often than raw text.
    text = "".join(tokens)
    try:
        f = Formula(text)
    except FormulaError as err:
        assert err.formula == text
    else:
        _check_invariants(f)


# Built from sampled characters rather than st.from_regex, which is much slower.
LETTER = st.sampled_from("abcdefghijklmnopqrstuvwxyz")
IDENT = st.builds(
    operator.add, LETTER, st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", max_size=4)
)
ODD_NAME = st.builds(
    lambda a, mid, b: a + mid + b, LETTER, st.text(alphabet="ab .-", max_size=4), LETTER
)
NAME = st.one_of(IDENT, IDENT, ODD_NAME)


def _write(name: str) -> str:
    return name if name.isidentifier() else f"`{name}`"


@st.composite
def group_specs(draw: st.DrawFn) -> tuple[str, list[GroupTerm]]:
    """A random group term as text, plus the GroupTerms it must parse to."""
    names = draw(st.lists(NAME, min_size=1, max_size=8, unique=True))
    n_path = draw(st.integers(1, min(3, len(names))))
    factor_names = names[:n_path]
    # split the factor names into a nesting path of interactions
    path: list[list[str]] = []
    for name in factor_names:
        if path and draw(st.booleans()):
            path[-1].append(name)
        else:
            path.append([name])
    effects = names[n_path:]
    intercept = draw(st.booleans()) or not effects
    style = draw(st.sampled_from(["explicit", "implicit", "minus"]))
    parts = [_write(e) for e in effects]
    if intercept:
        lhs = " + ".join((["1"] if style == "explicit" or not parts else []) + parts)
    elif style == "minus":
        lhs = " + ".join(parts) + " - 1"
    else:
        lhs = " + ".join(["0", *parts])
    correlated = draw(st.booleans())
    bar = "|" if correlated else "||"
    rhs = "/".join(":".join(_write(n) for n in step) for step in path)
    text = f"({lhs} {bar} {rhs})"
    expected_effects = ((INTERCEPT,) if intercept else ()) + tuple(parts)
    expected = []
    so_far: list[str] = []
    for step in path:
        so_far.extend(step)
        expected.append(GroupTerm(expected_effects, intercept, tuple(so_far), correlated))
    return text, expected


@FAST
@given(
    response=NAME,
    fixed=st.lists(NAME, max_size=3, unique=True),
    groups=st.lists(group_specs(), min_size=1, max_size=3),
    spaces=st.sampled_from(["", " ", "  "]),
)
def test_generated_formulas_parse_to_expected_groups(
    response: str,
    fixed: list[str],
    groups: list[tuple[str, list[GroupTerm]]],
    spaces: str,
) -> None:
    terms = [_write(x) for x in fixed] + [text for text, _ in groups]
    text = f"{_write(response)}{spaces}~{spaces}" + f"{spaces}+{spaces}".join(terms)
    f = Formula(text)
    assert f.response == _write(response)
    assert f.groups == tuple(g for _, expected in groups for g in expected)
    assert f.fixed == " + ".join(["1", *(_write(x) for x in fixed)])
    assert f.intercept is True
    assert f.offset is None


BRMS_TERMS = {
    "y ~ s(x)": ("'s(x)': smooth terms are", 5),
    "y ~ x + t2(x, z)": ("'t2(x, z)': smooth terms are", 9),
    "y ~ gp(x)": ("'gp(x)': Gaussian processes are", 5),
    "y ~ mo(x)": ("'mo(x)': monotonic effects are", 5),
    "y ~ me(x, sdx)": ("'me(x, sdx)': measurement-error terms are", 5),
    "y ~ mi(x)": ("'mi(x)': missing-value imputation is", 5),
    "y ~ x + ar(time = t, gr = g)": ("'ar(time = t, gr = g)': autocorrelation terms are", 9),
    "y ~ x + arma(p = 1)": ("'arma(p = 1)': autocorrelation terms are", 9),
    "y ~ x + car(M, gr = g)": ("'car(M, gr = g)': spatial (CAR) terms are", 9),
    "y ~ x + (1 | gr(g, by = z))": ("'gr(g, by = z)': grouping options are", 14),
    "y ~ x + (1 | mm(g1, g2))": ("'mm(g1, g2)': multi-membership terms are", 14),
    "y | subset(s) ~ x": ("'subset(s)': subsets of rows are", 5),
    "y | rate(n) ~ x": ("'rate(n)': rates with a denominator are", 5),
}


@pytest.mark.parametrize("text", list(BRMS_TERMS))
def test_brms_features_are_refused_by_name_first(text) -> None:
    """Each brms term stanbhm does not fit is named with what it is, at its position,
    before the parser or formulaic reads anything else."""
    what, position = BRMS_TERMS[text]
    with pytest.raises(FormulaError) as err:
        Formula(text)
    assert str(err.value).splitlines()[0] == (
        f"{what} not supported; stanbhm fits population terms (columns, interactions, "
        f"transforms), offset() and group terms (1 + x | g) at position {position} in "
        "formula:")


@pytest.mark.parametrize("text", ["bf(y ~ x, sigma ~ x)", "y ~ x + (1 | g), sigma ~ x",
                                  "brmsformula(y ~ x)"])
def test_distributional_formulas_are_refused(text) -> None:
    with pytest.raises(FormulaError, match=r"^distributional formulas \(bf\(y ~ x, sigma ~ "
                       r"x\)\) are not supported: stanbhm models the mean; sigma, phi and the "
                       r"family's other parameters are one number each at position"):
        Formula(text)


def test_a_backticked_name_is_not_a_brms_call() -> None:
    assert Formula("y ~ `s(x)` + x").fixed.startswith("1 + `s(x)`")


# ---- addition terms: cens(), weights(), trunc()


def test_censoring_with_and_without_an_upper_bound() -> None:
    f = Formula("y | cens(status) ~ x")
    assert (f.cens, f.y2, f.weights, f.trunc) == ("status", None, None, None)
    g = Formula("y | cens(`my status`, y + 2) ~ x")
    assert (g.cens, g.y2) == ("my status", "y + 2")
    assert Formula("y ~ x").cens is None


def test_weights_and_truncation() -> None:
    assert Formula("y | weights(w) ~ x").weights == "w"
    assert Formula("y | weights(1 / v) ~ x").weights == "1 / v"
    assert Formula("y | trunc(lb = 0) ~ x").trunc == (0.0, None)
    assert Formula("y | trunc(ub=104) ~ x").trunc == (None, 104.0)
    assert Formula("y | trunc(1, 10) ~ x").trunc == (1.0, 10.0)
    assert Formula("y | trunc(ub = 5, lb = -Inf) ~ x").trunc == (None, 5.0)


def test_truncation_bounds_from_columns() -> None:
    """A bound may name a column (bare or backticked), each row its own, as brms takes a
    variable; a number and a column mix; -Inf and Inf are still open sides, whatever
    their case; the term is written back with the names as given."""
    f = Formula("y | trunc(lb = lo, ub = hi) ~ x")
    assert f.trunc == ("lo", "hi")
    assert f.addition_texts == ("trunc(lb = lo, ub = hi)",)
    assert Formula("y | trunc(lo, 10) ~ x").trunc == ("lo", 10.0)
    assert Formula("y | trunc(ub = `upper bound`) ~ x").trunc == (None, "upper bound")
    assert Formula("y | trunc(ub = `upper bound`) ~ x").addition_texts == (
        "trunc(ub = `upper bound`)",)
    assert Formula("y | trunc(lb = inf, ub = hi) ~ x").trunc == (None, "hi")
    assert Formula("y | trunc(lb = -INF, ub = 3) ~ x").trunc == (None, 3.0)
    # lb < ub is checked per row in the data when a side is a column
    assert Formula("y | trunc(lb = lo, ub = lo) ~ x").trunc == ("lo", "lo")


def test_addition_terms_combine_in_any_order() -> None:
    f = Formula("y | trials(n) + weights(w) + cens(c, u) + trunc(ub = 9) ~ x + (1 | g)")
    assert (f.trials, f.weights, f.cens, f.y2, f.trunc) == ("n", "w", "c", "u", (None, 9.0))
    assert f == Formula("y | trunc(ub = 9) + cens(c, u) + weights(w) + trials(n) ~ x + (1 | g)")
    assert f != Formula("y | trials(n) + weights(w) + cens(c) + trunc(ub = 9) ~ x + (1 | g)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("y | cens(c + 1) ~ x", "cens() takes a column name, not 'c + 1' (its values are "
         "'none', 'right', 'left', 'interval' or 0, 1, -1, 2) at position 10"),
        ("y | cens() ~ x", "cens() needs the censoring column at position 10"),
        ("y | cens(c, u, v) ~ x", "cens() takes the censoring column and, for interval "
         "censoring, the upper bound: at most two arguments at position 16"),
        ("y | cens(c, ) ~ x", "cens() has an empty upper bound at position 13"),
        ("y | cens(c) + cens(d) ~ x", "'cens()' given twice at position 15"),
        ("y | weights(w, v) ~ x", "weights() takes exactly one argument at position 14"),
        ("y | trunc() ~ x", "trunc() needs a finite lb or ub at position 5"),
        ("y | trunc(ub = Inf) ~ x", "trunc() needs a finite lb or ub at position 5"),
        ("y | trunc(lb = a + 1) ~ x", "trunc() bounds are numbers or column names, not "
         "'a + 1' at position 11"),
        ("y | trunc(lb = NaN) ~ x", "trunc() bounds are numbers or column names, not 'NaN' "
         "at position 11"),
        ("y | trunc(lo = 1) ~ x", "trunc() takes lb and ub, not 'lo' at position 11"),
        ("y | trunc(1, 2, 3) ~ x", "trunc() takes at most two bounds, lb and ub at position 17"),
        ("y | trunc(lb = 1, lb = 2) ~ x", "trunc() is given lb twice at position 19"),
        ("y | trunc(lb = 5, ub = 1) ~ x", "trunc() needs lb < ub, not lb = 5, ub = 1 at "
         "position 5"),
    ],
)
def test_addition_term_errors_exact(text, message) -> None:
    with pytest.raises(FormulaError) as err:
        Formula(text)
    assert str(err.value).splitlines()[0] == f"{message} in formula:"
