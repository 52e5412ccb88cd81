"""Parse lme4/brms-style model formulas into a `Formula` object.

This is the first stage of the stanbhm pipeline (formula text -> `Formula`). It is pure:
it never looks at data, so every mistake it reports is a mistake in the text itself,
and it reports it with a caret under the offending character, because a formula is
usually typed by hand and "invalid formula" alone makes the user hunt for the typo.

What the parser does and does not decide:

* Group terms ``(effects | factor)`` are fully understood here, because everything
  downstream (group indices, parameterizations, rewrites) is keyed on them.
* Fixed effects are *not* expanded here. They are kept as a formulaic right-hand-side
  string and handed to `formulaic` by the spec stage, so that training data and new data
  go through exactly the same encoding (contrasts, ``scale()`` state, ...). We only ask
  formulaic to parse that string, so syntax errors still surface at parse time.

Conventions (relied on by the spec stage):

* The intercept of a group term is written ``"Intercept"`` (the name formulaic gives the
  intercept column and brms uses in parameter names), always first in
  `GroupTerm.effects`. A data column that is literally called ``Intercept`` is therefore
  written with backticks, ``"`Intercept`"``, in `GroupTerm.effects`.
* Expressions (`Formula.response`, `Formula.se`, `Formula.trials`, `Formula.weights`,
  `Formula.y2`, `Formula.offset`, `Formula.fixed`, `GroupTerm.effects`) use formulaic
  syntax: a name that is not a
  Python identifier keeps its backticks (``"`my col`"``), anything else (``log(n)``) is a
  Python expression evaluated the way formulaic evaluates ``I(...)``.
* Grouping factors (`GroupTerm.factors`) are raw column names without backticks,
  because they are only ever looked up in the data, never evaluated.
* Positions in error messages are 1-based columns, like an editor's.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import formulaic

from .errors import StanbhmError

__all__ = ["INTERCEPT", "Formula", "FormulaError", "GroupTerm", "parse_formula"]

#: How the intercept is written in `GroupTerm.effects`.
INTERCEPT = "Intercept"

#: Response modifiers ("addition terms" in brms) that may follow ``y |``.
ADDITION_TERMS = ("se", "trials", "cens", "weights", "trunc")
#: How the parser's messages list them.
_ADDITIONS_LISTED = "se(), trials(), cens(), weights() or trunc()"

#: brms's terms stanbhm does not fit, by the function that writes them.
UNSUPPORTED_TERMS = {
    "s": "smooth terms are", "t2": "smooth terms are", "gp": "Gaussian processes are",
    "mo": "monotonic effects are", "me": "measurement-error terms are",
    "mi": "missing-value imputation is", "ar": "autocorrelation terms are",
    "arma": "autocorrelation terms are", "car": "spatial (CAR) terms are",
    "gr": "grouping options are", "mm": "multi-membership terms are",
}
#: brms's addition terms stanbhm does not read yet.
UNSUPPORTED_ADDITIONS = {
    "subset": "subsets of rows are",
    "rate": "rates with a denominator are", "thres": "ordinal thresholds are",
    "cat": "categorical outcomes are", "dec": "decision outcomes are",
    "mi": "missing-value imputation is", "index": "indexed outcomes are",
    "vreal": "custom family data are", "vint": "custom family data are",
}
#: What stanbhm fits, said after each refusal.
SUPPORTED = ("stanbhm fits population terms (columns, interactions, transforms), "
             "offset() and group terms (1 + x | g)")

# Deep nesting is never meaningful in a model formula, and bounding it keeps the
# recursive-descent parser (and formulaic behind it) far away from RecursionError.
_MAX_NESTING = 50

# Characters that are single-character operators outside function calls.
_OPERATOR_CHARS = "~+-*/:|()^"

# Operators that combine operands inside one term (they bind tighter than + and -).
_PRODUCT_OPS = ("*", ":", "/", "^", "**")

_DIGITS = "0123456789"
_QUOTES = "'\"`"
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


class FormulaError(StanbhmError, ValueError):
    """A formula that cannot be parsed.

    Subclasses `ValueError` so callers that treat bad arguments generically still catch
    it. The message quotes the formula and puts a caret under the offending character,
    e.g.::

        unexpected ')' at position 9 in formula:
          y ~ x + )
                  ^

    Attributes:
        reason: the message without the quoted formula.
        formula: the formula text, or None when the input was not a string.
        index: 0-based index of the offending character (``len(formula)`` for "ended
            too early"), or None when there is no position to point at.
    """

    def __init__(self, reason: str, formula: str | None = None, index: int | None = None):
        self.reason = reason
        self.formula = formula
        self.index = index
        super().__init__(_format_error(reason, formula, index))

    @property
    def position(self) -> int | None:
        """1-based column of the offending character, as printed in the message."""
        return None if self.index is None else self.index + 1


def _format_error(reason: str, formula: str | None, index: int | None) -> str:
    if formula is None:
        return reason
    # Tabs, newlines and control characters would break the caret alignment, so they
    # are shown as one-column stand-ins; the position still refers to the real text.
    shown = "".join(c if c.isprintable() else (" " if c.isspace() else "?") for c in formula)
    if index is None:
        return f"{reason} in formula:\n  {shown}"
    return f"{reason} at position {index + 1} in formula:\n  {shown}\n  {' ' * index}^"


def _quote(name: str) -> str:
    """Write a column name the way formulaic reads it: bare if possible, else backticked."""
    return name if name.isidentifier() else f"`{name}`"


def column_text(name: str) -> str:
    """A column's name as a formula writes it, for messages: backticked where it must be."""
    return _quote(name)


def cens_text(column: str, upper: str | None = None) -> str:
    """``cens(c)`` or ``cens(c, y2)`` as a formula writes it, for messages: the column
    backticked where it needs to be, the upper bound's expression as given."""
    return f"cens({_quote(column)}{'' if upper is None else ', ' + upper})"


def weights_text(expr: str) -> str:
    """``weights(w)`` as a formula writes it, for messages."""
    return f"weights({expr})"


def trunc_text(lb: float | str | None, ub: float | str | None) -> str:
    """``trunc(lb = 0, ub = 10)``, the sides given, as brms names its bounds: a number, or
    a column's name (backticked where it must be) for bounds of each row's own."""
    bounds = [f"{k} = {_quote(v) if isinstance(v, str) else format(v, 'g')}"
              for k, v in (("lb", lb), ("ub", ub)) if v is not None]
    return f"trunc({', '.join(bounds)})"


@dataclass(frozen=True)
class GroupTerm:
    """One group-level term, e.g. ``(1 + x | school)``.

    A nested term ``(1 | a/b)`` becomes two of these, ``(1 | a)`` and ``(1 | a:b)``,
    because downstream each needs its own index vector and its own scale parameters.

    Attributes:
        effects: effect terms that vary by group, intercept first as ``"Intercept"``,
            interactions written ``"x:z"``, in order of appearance, without duplicates.
        intercept: whether ``"Intercept"`` is among the effects (kept as a flag so
            callers need not search the tuple).
        factors: the grouping variables, ``("a", "b")`` for ``a:b``; raw column names.
        correlated: True for ``|`` (correlated effects, LKJ prior), False for ``||``.
    """

    effects: tuple[str, ...]
    intercept: bool
    factors: tuple[str, ...]
    correlated: bool

    @property
    def name(self) -> str:
        """Display name of the grouping factor, ``"school"`` or ``"a:b"``."""
        return ":".join(self.factors)

    def __str__(self) -> str:
        # lme4 syntax, so error messages elsewhere can quote the term as the user knows it.
        lhs = " + ".join("1" if e == INTERCEPT else e for e in self.effects)
        if not self.intercept:
            lhs = f"0 + {lhs}"
        bar = "|" if self.correlated else "||"
        return f"({lhs} {bar} {':'.join(_quote(f) for f in self.factors)})"


@dataclass(frozen=True, init=False, repr=False)
class Formula:
    """A parsed model formula; ``Formula("y ~ x + (1 | g)")`` parses the text.

    It is an immutable value: two formulas compare equal when they parse to the same
    model, whatever their spacing (`text` is kept for display but not compared).

    Attributes:
        text: the formula as given.
        response: the response expression, e.g. ``"y"``.
        se: the known-standard-error expression from ``y | se(s)``, else None.
        trials: the number-of-trials expression from ``y | trials(n)``, else None.
        cens: the censoring column from ``y | cens(c)`` or ``y | cens(c, y2)``, a raw
            column name (its values are words or brms's codes, not an expression), else
            None.
        y2: the upper-bound expression of interval censoring, ``cens(c, y2)``, else None.
        weights: the row-weight expression from ``y | weights(w)``, else None.
        trunc: the truncation bounds from ``y | trunc(lb = 0, ub = 10)``, (lb, ub) with
            None for a side not given, else None; a bound is a number, or the raw name of
            the column holding each row's own (``trunc(lb = lo, ub = 10)``: ``("lo",
            10.0)``), as brms takes a variable.
        fixed: the fixed-effects right-hand side for formulaic, starting with an
            explicit ``"1"`` or ``"0"``: ``"1 + x*z"``, ``"0 + x"``, or just ``"1"``.
            Group terms and the offset are removed. (Should that rewrite ever change
            formulaic's terms, the user's own spelling is kept instead; see
            `_Parser.interpret_fixed`.)
        intercept: whether the fixed effects include an intercept.
        offset: the expression inside ``offset(...)``, else None.
        groups: the group terms, in order of appearance, nested ones expanded.
    """

    text: str = field(compare=False)
    response: str
    se: str | None
    trials: str | None
    fixed: str
    intercept: bool
    offset: str | None
    groups: tuple[GroupTerm, ...]
    cens: str | None = None
    y2: str | None = None
    weights: str | None = None
    trunc: tuple[float | str | None, float | str | None] | None = None

    def __init__(self, text: str):
        _refuse_brms_features(text)
        parsed = _Parser(text).parse()
        # The dataclass is frozen so users cannot desynchronize fields from `text`;
        # object.__setattr__ is the documented way for the constructor to fill it.
        object.__setattr__(self, "text", text)
        for key, value in parsed.items():
            object.__setattr__(self, key, value)

    def __repr__(self) -> str:
        return f"Formula({self.text!r})"

    def __str__(self) -> str:
        return self.text

    @property
    def addition_texts(self) -> tuple[str, ...]:
        """The addition terms that change what a row adds to the likelihood (cens(),
        weights(), trunc()), each as the formula writes it: ``("cens(c, u)",
        "weights(w)")``; () without any."""
        out = []
        if self.cens is not None:
            out.append(cens_text(self.cens, self.y2))
        if self.weights is not None:
            out.append(weights_text(self.weights))
        if self.trunc is not None:
            out.append(trunc_text(*self.trunc))
        return tuple(out)


def _refuse_brms_features(text: str) -> None:
    """A FormulaError naming the brms feature `text` uses that stanbhm does not have, if
    any, before anything else reads the formula: a distributional formula
    (``bf(y ~ x, sigma ~ x)``), a term such as ``s(x)`` or ``mo(x)``, or an addition term
    such as ``cens(c)``. Backticked and quoted text is a name, not a call."""
    if not isinstance(text, str):
        return
    plain = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"", lambda m: " " * len(m.group()), text)
    found = re.match(r"\s*(bf|brmsformula|nlf|lf)\s*\(", plain)
    if found or (plain.count("~") > 1 and "," in plain):
        raise FormulaError(
            "distributional formulas (bf(y ~ x, sigma ~ x)) are not supported: stanbhm "
            "models the mean; sigma, phi and the family's other parameters are one number "
            "each", text, found.start(1) if found else plain.index("~", plain.index("~") + 1))
    for call in re.finditer(r"(?<![\w.])([A-Za-z_]\w*)\s*\(", plain):
        name = call.group(1)
        before_tilde = "~" in plain and call.start() < plain.index("~")
        table = UNSUPPORTED_ADDITIONS if before_tilde else UNSUPPORTED_TERMS
        if name not in table:
            continue
        written = text[call.start(1):_closing(plain, call.end() - 1) + 1]
        raise FormulaError(f"'{written}': {table[name]} not supported; {SUPPORTED}",
                           text, call.start(1))


def _closing(text: str, open_index: int) -> int:
    """The index of the parenthesis closing the one at `open_index` (the text's end when
    it is never closed)."""
    depth = 0
    for i in range(open_index, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return len(text) - 1


def parse_formula(text: str) -> Formula:
    """Parse `text` into a `Formula`; raises `FormulaError` if it is not a valid formula."""
    return Formula(text)


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    """One lexical unit. Function calls are single tokens: their arguments are Python
    code (``I(x**2)``, ``C(x, levels=["a", "b"])``) that formulaic evaluates, so the
    formula grammar must not look inside them."""

    kind: str  # "name", "number", "call", "brace", "op" or "end"
    text: str  # operator or number text, unquoted name, or function name of a call
    start: int
    end: int
    args: tuple[tuple[str, int], ...] = ()  # call arguments (text, start index)


def _scan_code(text: str, open_index: int) -> tuple[int, list[int]]:
    """Skip Python code from the bracket at `open_index` to its matching closer.

    Returns the index just past the closer and the positions of the commas that
    separate top-level arguments. Quotes are honoured so ``C(x, levels=[")"])`` works.
    """
    stack = [open_index]
    commas: list[int] = []
    i = open_index + 1
    while i < len(text):
        c = text[i]
        if c in _QUOTES:
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if (text[j] == "\\" and c != "`") else 1
            if j >= len(text):
                raise FormulaError(f"unclosed quote {c}", text, i)
            i = j + 1
            continue
        if c in _CLOSERS:
            stack.append(i)
        elif c in _CLOSERS.values():
            opener = text[stack[-1]]
            if c != _CLOSERS[opener]:
                raise FormulaError(f"'{c}' does not match '{opener}'", text, i)
            stack.pop()
            if not stack:
                return i + 1, commas
        elif c == "," and len(stack) == 1:
            commas.append(i)
        i += 1
    raise FormulaError(f"unclosed '{text[stack[-1]]}'", text, stack[-1])


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "`":
            close = text.find("`", i + 1)
            if close < 0:
                raise FormulaError("unclosed '`'", text, i)
            if close == i + 1:
                raise FormulaError("empty name ``", text, i)
            tokens.append(_Token("name", text[i + 1 : close], i, close + 1))
            i = close + 1
        elif c in _DIGITS:
            j = i
            while j < n and text[j] in _DIGITS:
                j += 1
            if j < n and text[j] == ".":
                j += 1
                while j < n and text[j] in _DIGITS:
                    j += 1
            tokens.append(_Token("number", text[i:j], i, j))
            i = j
        elif c.isidentifier():
            j = i + 1
            while j < n and ("_" + text[j]).isidentifier():
                j += 1
            # Only a "(" right after the name makes a call: with `x (1|g)` (a missing
            # "+") a lenient rule would silently turn a group term into a call of x.
            if j < n and text[j] == "(":
                end, commas = _scan_code(text, j)
                bounds = [j, *commas, end - 1]
                args = tuple((text[a + 1 : b], a + 1) for a, b in itertools.pairwise(bounds))
                tokens.append(_Token("call", text[i:j], i, end, args))
                i = end
            else:
                tokens.append(_Token("name", text[i:j], i, j))
                i = j
        elif c == "{":
            end, _ = _scan_code(text, i)
            tokens.append(_Token("brace", text[i:end], i, end))
            i = end
        elif text.startswith(("||", "**"), i):
            tokens.append(_Token("op", text[i : i + 2], i, i + 2))
            i += 2
        elif c in _OPERATOR_CHARS:
            tokens.append(_Token("op", c, i, i + 1))
            i += 1
        else:
            raise FormulaError(f"invalid character {c!r}", text, i)
    tokens.append(_Token("end", "", n, n))
    return tokens


# --------------------------------------------------------------------------- syntax tree


@dataclass
class _Paren:
    """``( sum )`` without a bar: plain grouping inside the fixed effects."""

    body: _Sum
    start: int


@dataclass
class _Group:
    """``( sum | path )``; `path` is a list of interactions, ``a:b/c`` -> [[a, b], [c]]."""

    lhs: _Sum
    path: list[list[_Token]]
    correlated: bool
    start: int


_Operand = _Token | _Paren | _Group


@dataclass
class _Product:
    """Operands joined by operators that bind tighter than + and - (``x*z``, ``a:b``)."""

    operands: list[_Operand]
    ops: list[_Token]

    @property
    def single(self) -> _Operand | None:
        return self.operands[0] if len(self.operands) == 1 else None


@dataclass
class _Item:
    sign: str  # "+" or "-"
    sign_index: int  # index of the sign character, or of the product when implicit
    product: _Product


@dataclass
class _Sum:
    items: list[_Item]


def _start(node: _Operand | _Product) -> int:
    if isinstance(node, _Product):
        return _start(node.operands[0])
    return node.start


def _render_operand(text: str, node: _Operand) -> str:
    if isinstance(node, _Paren):
        return f"({_render_sum(text, node.body)})"
    if isinstance(node, _Group):  # never rendered: rejected before rendering
        return text[node.start : node.start + 1]
    if node.kind == "name":
        return _quote(node.text)
    return text[node.start : node.end]


def _render_product(text: str, product: _Product) -> str:
    parts = [_render_operand(text, product.operands[0])]
    for op, operand in zip(product.ops, product.operands[1:], strict=True):
        parts.append(op.text)
        parts.append(_render_operand(text, operand))
    return "".join(parts)


def _render_sum(text: str, body: _Sum) -> str:
    out = ""
    for k, item in enumerate(body.items):
        term = _render_product(text, item.product)
        if k == 0:
            out = term if item.sign == "+" else f"-{term}"
        else:
            out += f" {item.sign} {term}"
    return out


def _is_number(node: _Operand | None, value: str | None = None) -> bool:
    return (
        isinstance(node, _Token) and node.kind == "number" and (value is None or node.text == value)
    )


# --------------------------------------------------------------------------- parser


def _describe(token: _Token, text: str) -> str:
    if token.kind == "end":
        return "end of formula"
    snippet = text[token.start : token.end]
    if len(snippet) > 20:
        snippet = snippet[:17] + "..."
    return f"'{snippet}'"


class _Parser:
    """Recursive-descent parser over the token list, followed by interpretation.

    Grammar (``sum`` is R's additive level, ``product`` binds tighter)::

        formula  := response ["|" addition ("+" addition)*] "~" sum END
        sum      := ["+"|"-"] product (("+"|"-") product)*
        product  := operand (("*"|":"|"/"|"^"|"**") operand)*
        operand  := NAME | NUMBER | CALL | BRACE | "(" sum [("|"|"||") path] ")"
        path     := factor ("/" factor)*          factor := NAME (":" NAME)*
    """

    def __init__(self, text: Any):
        if not isinstance(text, str):
            raise FormulaError(f"formula must be a string, got {type(text).__name__}")
        self.text = text
        self.tokens: list[_Token] = []
        self.i = 0
        self.depth = 0

    # -- helpers

    def error(self, reason: str, index: int) -> FormulaError:
        return FormulaError(reason, self.text, index)

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def at(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def advance(self) -> _Token:
        token = self.tok
        self.i += 1
        return token

    def unexpected(self, hint: str = "") -> FormulaError:
        return self.error(f"unexpected {_describe(self.tok, self.text)}{hint}", self.tok.start)

    # -- entry point

    def parse(self) -> dict[str, Any]:
        text = self.text
        if not text.strip():
            raise self.error("empty formula", 0)
        self.tokens = _tokenize(text)
        tildes = [t for t in self.tokens if t.kind == "op" and t.text == "~"]
        if not tildes:
            first = len(text) - len(text.lstrip())
            raise self.error("missing '~' (a formula looks like 'y ~ x')", first)
        if len(tildes) > 1:
            raise self.error("more than one '~'", tildes[1].start)
        if self.at("~"):
            raise self.error("missing response before '~'", self.tok.start)
        response, additions = self.parse_lhs()
        self.advance()  # the "~"
        if self.tok.kind == "end":
            raise self.error("missing right-hand side after '~'", self.tok.start)
        rhs = self.parse_sum()
        if self.tok.kind != "end":
            raise self.trailing_error()
        fields = self.interpret_rhs(rhs)
        cens = additions.get("cens")
        fields.update(response=response, se=additions.get("se"), trials=additions.get("trials"),
                      cens=cens[0] if cens else None, y2=cens[1] if cens else None,
                      weights=additions.get("weights"), trunc=additions.get("trunc"))
        return fields

    def trailing_error(self) -> FormulaError:
        """Explain a token that cannot continue the expression parsed so far."""
        if self.at("|", "||"):
            return self.error(
                f"'{self.tok.text}' outside parentheses (group terms are written '(1 | g)')",
                self.tok.start,
            )
        if self.at(")"):
            return self.unexpected()
        previous = self.tokens[self.i - 1]
        if self.at("(") and previous.kind == "name" and previous.end < self.tok.start:
            # `log (x)`: calls are only recognised without a space (see _tokenize).
            return self.unexpected(" (no space is allowed between a function and '(')")
        return self.unexpected(" (missing '+' between terms?)")

    # -- left-hand side

    def parse_lhs(self) -> tuple[str, dict[str, str]]:
        token = self.tok
        if token.kind == "name":
            response = _quote(token.text)
        elif token.kind == "call" and token.text not in ADDITION_TERMS:
            response = self.code(token)
            self.validate(response, token.start, "response")
        else:
            raise self.error(
                f"the response must be a variable name or a transformation such as "
                f"log(y), not {_describe(token, self.text)}",
                token.start,
            )
        self.advance()
        additions: dict[str, str] = {}
        if self.at("|"):
            self.advance()
            while True:
                self.parse_addition(additions)
                if not self.at("+"):
                    break
                self.advance()
        if not self.at("~"):
            raise self.unexpected(
                f" after the response (only '| {_ADDITIONS_LISTED}' may follow it)"
            )
        return response, additions

    def parse_addition(self, additions: dict[str, Any]) -> None:
        token = self.tok
        if token.kind != "call":
            raise self.error(
                f"expected {_ADDITIONS_LISTED} after the response's '|', "
                f"got {_describe(token, self.text)}",
                token.start,
            )
        if token.text not in ADDITION_TERMS:
            raise self.error(
                f"unknown response modifier '{token.text}()' (expected {_ADDITIONS_LISTED})",
                token.start,
            )
        if token.text in additions:
            raise self.error(f"'{token.text}()' given twice", token.start)
        if token.text == "cens":
            additions["cens"] = self.cens_arguments(token)
        elif token.text == "trunc":
            additions["trunc"] = self.trunc_arguments(token)
        else:
            additions[token.text] = self.single_argument(token)
        self.advance()

    def cens_arguments(self, token: _Token) -> tuple[str, str | None]:
        """``cens(c)`` or ``cens(c, y2)``: the censoring column, a name (bare or
        backticked: its values are words or codes, not numbers to compute with), and the
        interval's upper bound, an expression."""
        args = [(arg.strip(), start + len(arg) - len(arg.lstrip())) for arg, start in token.args]
        if len(args) > 2:
            raise self.error("cens() takes the censoring column and, for interval "
                             "censoring, the upper bound: at most two arguments",
                             args[2][1])
        column, start = args[0]
        if not column:
            raise self.error("cens() needs the censoring column", start)
        name = column[1:-1] if len(column) > 2 and column[0] == column[-1] == "`" else column
        if not (name.isidentifier() or column.startswith("`")) or "`" in name:
            raise self.error(f"cens() takes a column name, not '{column}' (its values are "
                             "'none', 'right', 'left', 'interval' or 0, 1, -1, 2)", start)
        upper = None
        if len(args) == 2:
            upper, at = args[1]
            if not upper:
                raise self.error("cens() has an empty upper bound", at)
            self.validate(f"I({upper})", at, "cens() upper bound")
        return name, upper

    def trunc_arguments(self, token: _Token) -> tuple[float | str | None, float | str | None]:
        """``trunc(lb = 0)``, ``trunc(ub = 10)``, ``trunc(0, 10)``: numbers, as brms
        writes them (lb first when not named), or column names (bare or backticked) for a
        bound of each row's own, ``trunc(lb = lo, ub = 10)``."""
        bounds: dict[str, float | str | None] = {}
        if len(token.args) == 1 and not token.args[0][0].strip():
            raise self.error("trunc() needs a finite lb or ub", token.start)
        for k, (arg, start) in enumerate(token.args):
            text = arg.strip()
            at = start + len(arg) - len(arg.lstrip())
            name, eq, value = text.partition("=")
            if eq:
                name, value = name.strip(), value.strip()
                if name not in ("lb", "ub"):
                    raise self.error(f"trunc() takes lb and ub, not '{name}'", at)
            else:
                name, value = (("lb", "ub")[k] if k < 2 else ""), text
            if not name:
                raise self.error("trunc() takes at most two bounds, lb and ub", at)
            if name in bounds:
                raise self.error(f"trunc() is given {name} twice", at)
            bounds[name] = self.trunc_bound(value, at)
        lb, ub = bounds.get("lb"), bounds.get("ub")
        if lb is None and ub is None:
            raise self.error("trunc() needs a finite lb or ub", token.start)
        if isinstance(lb, float) and isinstance(ub, float) and not lb < ub:
            raise self.error(f"trunc() needs lb < ub, not lb = {lb:g}, ub = {ub:g}",
                             token.start)
        return lb, ub

    def trunc_bound(self, value: str, at: int) -> float | str | None:
        """One bound of trunc(): a number (None for brms's open side, -Inf or Inf) or a
        column's raw name."""
        column = value[1:-1] if len(value) > 2 and value[0] == value[-1] == "`" else value
        if (column.isidentifier() or value.startswith("`")) and "`" not in column and \
                column.lower() not in ("inf", "nan"):
            return column
        try:
            number = float(value)
        except ValueError:
            raise self.error(f"trunc() bounds are numbers or column names, not '{value}'",
                             at) from None
        if number != number:
            raise self.error(f"trunc() bounds are numbers or column names, not '{value}'", at)
        # brms writes an open side as -Inf or Inf
        return None if abs(number) == float("inf") else number

    def single_argument(self, token: _Token) -> str:
        """The one argument of se(), trials() or offset(), checked to be an expression."""
        if len(token.args) != 1:
            second = token.args[1][1] - 1
            raise self.error(f"{token.text}() takes exactly one argument", second)
        arg, start = token.args[0]
        if not arg.strip():
            raise self.error(f"{token.text}() needs an argument", start)
        expr = arg.strip()
        self.validate(f"I({expr})", start + len(arg) - len(arg.lstrip()), f"{token.text}()")
        return expr

    def code(self, token: _Token) -> str:
        return self.text[token.start : token.end]

    def validate(self, rhs: str, index: int, what: str) -> list[str]:
        """Have formulaic parse `rhs`; return its term names or raise a FormulaError."""
        try:
            terms = [str(term) for term in formulaic.Formula(rhs)]
        except Exception as exc:
            # formulaic (and the Python parser under it) signal bad input with
            # FormulaSyntaxError, SyntaxError, ValueError, ...; all of them mean "this
            # text is not valid", which callers must see as one FormulaError.
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise self.error(f"invalid {what}: {lines[0]}", index) from exc
        return terms

    # -- right-hand side: syntax

    def parse_sum(self) -> _Sum:
        items: list[_Item] = []
        sign, sign_index = "+", self.tok.start
        if self.at("+", "-"):
            sign, sign_index = self.tok.text, self.advance().start
        items.append(_Item(sign, sign_index, self.parse_product()))
        while self.at("+", "-"):
            sign_token = self.advance()
            items.append(_Item(sign_token.text, sign_token.start, self.parse_product()))
        return _Sum(items)

    def parse_product(self) -> _Product:
        operands = [self.parse_operand()]
        ops: list[_Token] = []
        while self.at(*_PRODUCT_OPS):
            ops.append(self.advance())
            operands.append(self.parse_operand())
        return _Product(operands, ops)

    def parse_operand(self) -> _Operand:
        token = self.tok
        if token.kind in ("name", "number", "call", "brace"):
            return self.advance()
        if not self.at("("):
            raise self.unexpected()
        open_token = self.advance()
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise self.error("parentheses nested too deeply", open_token.start)
        if self.at("|", "||"):
            raise self.error(
                f"empty group term: no effects before '{self.tok.text}'", self.tok.start
            )
        if self.at(")"):
            raise self.error("empty parentheses", open_token.start)
        body = self.parse_sum()
        node: _Operand
        if self.at("|", "||"):
            correlated = self.advance().text == "|"
            node = _Group(body, self.parse_path(), correlated, open_token.start)
        else:
            node = _Paren(body, open_token.start)
        if self.tok.kind == "end":
            raise self.error("unclosed '('", open_token.start)
        if not self.at(")"):
            if isinstance(node, _Group):
                raise self.unexpected(
                    " in grouping factor (use a:b for an interaction, a/b for nesting)"
                )
            raise self.trailing_error()
        self.advance()
        self.depth -= 1
        return node

    def parse_path(self) -> list[list[_Token]]:
        path = [self.parse_factor()]
        while self.at("/"):
            self.advance()
            path.append(self.parse_factor())
        seen: set[str] = set()
        for name in (name for factor in path for name in factor):
            if name.text in seen:
                raise self.error(f"grouping variable '{name.text}' repeated", name.start)
            seen.add(name.text)
        return path

    def parse_factor(self) -> list[_Token]:
        names = [self.expect_factor_name()]
        while self.at(":"):
            self.advance()
            names.append(self.expect_factor_name())
        return names

    def expect_factor_name(self) -> _Token:
        token = self.tok
        if token.kind == "name":
            return self.advance()
        previous = self.tokens[self.i - 1]
        if (
            previous.kind == "op"
            and previous.text in ("|", "||")
            and (token.kind == "end" or self.at(")"))
        ):
            raise self.error(f"missing grouping factor after '{previous.text}'", token.start)
        raise self.error(
            f"the grouping factor must be a variable name (or a:b, a/b), "
            f"not {_describe(token, self.text)}",
            token.start,
        )

    # -- right-hand side: meaning

    def interpret_rhs(self, rhs: _Sum) -> dict[str, Any]:
        groups: list[GroupTerm] = []
        offset: str | None = None
        fixed_items: list[_Item] = []
        for item in rhs.items:
            single = item.product.single
            if isinstance(single, _Group):
                if item.sign == "-":
                    raise self.error("a group term cannot be removed with '-'", item.sign_index)
                groups.extend(self.interpret_group(single))
            elif isinstance(single, _Token) and single.kind == "call" and single.text == "offset":
                if item.sign == "-":
                    raise self.error("offset() cannot be removed with '-'", item.sign_index)
                if offset is not None:
                    raise self.error("only one offset() term is allowed", single.start)
                offset = self.single_argument(single)
            else:
                self.reject_nested(item.product)
                fixed_items.append(item)
        fixed, intercept = self.interpret_fixed(fixed_items)
        return {
            "fixed": fixed,
            "intercept": intercept,
            "offset": offset,
            "groups": tuple(groups),
        }

    def reject_nested(self, product: _Product) -> None:
        """Group terms and offset() only make sense as top-level terms joined with '+'."""
        for operand in product.operands:
            if isinstance(operand, _Group):
                raise self.error(
                    "a group term must be a separate term added with '+'", operand.start
                )
            if isinstance(operand, _Paren):
                for item in operand.body.items:
                    self.reject_nested(item.product)
            elif operand.kind == "call" and operand.text == "offset":
                raise self.error("offset() must be a separate term added with '+'", operand.start)

    def interpret_fixed(self, items: list[_Item]) -> tuple[str, bool]:
        """Return the formulaic RHS string (with explicit ``1``/``0``) and the intercept flag.

        formulaic decides whether the intercept survives (``0 + x + 1``, ``x - 0``, ...),
        so the flag can never disagree with the matrix the spec stage builds. The string
        is then rewritten with the top-level ``1``/``0`` terms replaced by one explicit
        leading ``1`` or ``0``, which is easier to read in generated comments.
        """
        written = _render_sum(self.text, _Sum(items)) if items else ""
        anchor = _start(items[0].product) if items else len(self.text)
        try:
            terms = self.validate(written, anchor, "fixed effects")
        except FormulaError:
            # Point the caret at the first term formulaic rejects on its own; the
            # whole-sum check runs first because it is one call instead of many.
            for item in items:
                rendered = _render_product(self.text, item.product)
                self.validate(rendered, _start(item.product), "fixed-effect term")
            raise
        intercept = "1" in terms
        rest = [
            item
            for item in items
            if not (_is_number(item.product.single, "0") or _is_number(item.product.single, "1"))
        ]
        fixed = "1" if intercept else "0"
        for item in rest:
            fixed += f" {item.sign} {_render_product(self.text, item.product)}"
        # Belt and braces: if the rewrite changed the meaning in some corner we did not
        # foresee, keep the user's own spelling rather than a wrong model.
        if sorted(self.validate(fixed, anchor, "fixed effects")) != sorted(terms):
            fixed = written
        return fixed, intercept

    def interpret_group(self, group: _Group) -> list[GroupTerm]:
        effects, intercept = self.group_effects(group)
        factors: list[str] = []
        expanded: list[GroupTerm] = []
        for interaction in group.path:  # a/b/c -> a, a:b, a:b:c
            factors.extend(name.text for name in interaction)
            expanded.append(
                GroupTerm(
                    effects=((INTERCEPT,) if intercept else ()) + effects,
                    intercept=intercept,
                    factors=tuple(factors),
                    correlated=group.correlated,
                )
            )
        return expanded

    def group_effects(self, group: _Group) -> tuple[tuple[str, ...], bool]:
        """Expand the left of the bar into effect terms, lme4 style.

        The intercept is included unless removed (``0 +`` or ``- 1``); the last of
        ``1``/``0``/``-1`` wins, as in R. ``x*z`` expands to ``x + z + x:z``.
        """
        intercept = True
        terms: dict[frozenset[str], tuple[str, int]] = {}
        for item in group.lhs.items:
            single = item.product.single
            if isinstance(single, _Token) and single.kind == "number":
                if single.text not in ("0", "1") or (single.text == "0" and item.sign == "-"):
                    raise self.error(
                        "only '1', '0' and '- 1' may appear as numbers in a group term",
                        item.sign_index if item.sign == "-" else single.start,
                    )
                intercept = single.text == "1" and item.sign == "+"
                continue
            for atoms in self.product_terms(item.product):
                key = frozenset(atoms)
                if item.sign == "+":
                    terms.setdefault(key, (":".join(atoms), _start(item.product)))
                else:
                    terms.pop(key, None)
        if not terms and not intercept:
            raise self.error("group term has no effects (its intercept is removed)", group.start)
        if terms:
            try:
                self.validate(
                    " + ".join(["0", *(n for n, _ in terms.values())]),
                    group.start,
                    "group-level terms",
                )
            except FormulaError:
                for name, index in terms.values():  # find the culprit for the caret
                    self.validate(f"0 + {name}", index, "group-level term")
                raise
        return tuple(name for name, _ in terms.values()), intercept

    def product_terms(self, product: _Product) -> list[tuple[str, ...]]:
        """Terms of ``a:b*c`` etc. as tuples of atoms; ``:`` binds tighter than ``*``."""
        chunks: list[list[tuple[str, ...]]] = []
        current = self.operand_terms(product.operands[0])
        for op, operand in zip(product.ops, product.operands[1:], strict=True):
            if op.text not in (":", "*"):
                raise self.error(f"operator '{op.text}' is not supported in a group term", op.start)
            right = self.operand_terms(operand)
            if op.text == ":":
                current = _unique([_merge(a, b) for a in current for b in right])
            else:
                chunks.append(current)
                current = right
        chunks.append(current)
        result = chunks[0]
        for chunk in chunks[1:]:
            result = _unique(result + chunk + [_merge(a, b) for a in result for b in chunk])
        return result

    def operand_terms(self, operand: _Operand) -> list[tuple[str, ...]]:
        if isinstance(operand, _Group):
            raise self.error("a group term cannot appear inside another group term", operand.start)
        if isinstance(operand, _Paren):
            out: list[tuple[str, ...]] = []
            for item in operand.body.items:
                if item.sign == "-" or _is_number(item.product.single):
                    raise self.error(
                        "only added variables may appear inside parentheses in a group term",
                        item.sign_index,
                    )
                out.extend(self.product_terms(item.product))
            return _unique(out)
        if operand.kind == "number":
            raise self.error(
                "a number cannot be part of an interaction in a group term",
                operand.start,
            )
        if operand.kind == "call" and operand.text == "offset":
            raise self.error("offset() cannot appear in a group term", operand.start)
        if operand.kind == "name":
            # "Intercept" is reserved for the intercept in GroupTerm.effects.
            quoted = _quote(operand.text)
            return [(f"`{quoted}`" if quoted == INTERCEPT else quoted,)]
        return [(self.code(operand),)]


def _merge(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """Interaction of two terms; ``x:x`` is just ``x``."""
    return a + tuple(atom for atom in b if atom not in a)


def _unique(terms: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Drop terms with the same atoms (``x:z`` == ``z:x``), keeping the first spelling."""
    seen: dict[frozenset[str], tuple[str, ...]] = {}
    for term in terms:
        seen.setdefault(frozenset(term), term)
    return list(seen.values())
