"""Long Stan lines laid out as ``stanc --auto-format`` lays them out.

The golden programs are stanc's own formatting of themselves (tests/test_render.py), so
every line a template writes that may run past the margin goes through one of these:
a call's arguments (`wrap`), a statement's expression (`statement`) or a function's
signature (`signature`).
"""

from __future__ import annotations

import re

__all__ = ["call", "returned", "signature", "statement", "wrap"]


def wrap(head: str, items: list[str], tail: str, width: int = 77,
         indent: int | None = None) -> list[str]:
    """``head`` + comma-separated `items` + ``tail`` as stanc --auto-format lays out a
    call: one line when it fits in `width` columns, otherwise broken after the last item
    that fits, continued under the first item (or at column `indent`). A line that goes
    on after its comma fits in 77 columns at most (stanc broke a 78-column one)."""
    lines, line = [], head
    pad = " " * (len(head) if indent is None else indent)
    for k, item in enumerate(items):
        more = k < len(items) - 1
        piece = item + ("," if more else tail)
        if line != head and len(line) + 1 + len(piece) > (min(width, 77) if more else width):
            lines.append(line)
            line = pad + piece
        else:
            line += ("" if line == head else " ") + piece
    return [*lines, line]


def _top_level(term: str):
    """(position, character) of each character of `term` outside brackets."""
    depth = 0
    for i, char in enumerate(term):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            yield i, char


def _operator_break(term: str) -> int:
    """Where stanc --auto-format breaks an expression too long for its line: before its
    last operator outside brackets, a sum's before a product's; -1 when it has none."""
    found: dict[int, int] = {}
    for i, char in _top_level(term):
        if char == " ":
            for op, rank in ((" + ", 0), (" - ", 0), (" .* ", 1), (" * ", 1)):
                if term.startswith(op, i):
                    found[rank] = i
    return found[min(found)] if found else -1


def _call(term: str) -> tuple[str, list[str]] | None:
    """(function, arguments) when `term` is one call ``f(a, b)``, else None."""
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)\)", term)
    if not match or _operator_break(term) >= 0:
        return None
    inner, args, start = match.group(2), [], 0
    for i, char in _top_level(inner):
        if char == ",":
            args.append(inner[start:i].strip())
            start = i + 1
    return match.group(1), [*args, inner[start:].strip()]


def statement(head: str, term: str, tail: str, width: int = 78) -> list[str]:
    """``head`` + `term` + ``tail`` laid out as stanc --auto-format does: one line when it
    fits; a call broken between its arguments (`call`; one argument alone goes to the
    next line, under the call's parenthesis); an expression broken before an operator."""
    if len(head) + len(term) + len(tail) <= width:
        return [head + term + tail]
    one_call = _call(term)
    if one_call is not None:
        function, args = one_call
        if len(args) == 1:
            return [f"{head}{function}(", " " * len(head + function) + " " + args[0] + ")" + tail]
        return call(head, function, args, tail, width)
    cut = _operator_break(term)
    if cut < 0:
        return [head + term + tail]
    op, _, operand = term[cut + 1:].partition(" ")
    return [head + term[:cut], *statement(" " * len(head) + op + " ", operand, tail, width)]


def signature(head: str, items: list[str], tail: str) -> list[str]:
    """A function's signature as stanc --auto-format lays it out: like a call when that
    takes at most two lines, otherwise one argument per line."""
    lines = wrap(head, items, tail)
    if len(lines) <= 2:
        return lines
    pad = " " * len(head)
    return [head + items[0] + ",", *(pad + i + "," for i in items[1:-1]), pad + items[-1] + tail]


#: stanc continues a call whose function's name has at least this many characters two
#: columns past the start of the expression, not under its parenthesis (found by
#: formatting calls of every name length with stanc 2.39's --auto-format).
LONG_NAME = 17


def call(head: str, function: str, args: list[str], tail: str, width: int = 78) -> list[str]:
    """``head`` + ``function(args)`` + ``tail``, a statement whose expression is one call,
    as stanc lays it out: continued under the parenthesis, or for a long name two columns
    past the expression's start (`LONG_NAME`)."""
    indent = len(head) + 2 if len(function) >= LONG_NAME else None
    return wrap(f"{head}{function}(", list(args), f"){tail}", width, indent)


def returned(density: tuple[str, list[str] | tuple[str, ...]]) -> list[str]:
    """``return f(args);`` for `density` (f, args), laid out as any call (`call`)."""
    function, args = density
    return call("    return ", function, list(args), ";", width=77)
