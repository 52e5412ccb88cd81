"""Plan -> Program: the Stan text (through the Jinja templates), its data and schema.

Stan text is made in one layer: the templates write every statement, declaration and
function. They loop and branch on Plan fields; the expressions they place (a linear
predictor's terms, a density's arguments, a prior's right-hand side) come as plain
strings from the part that owns them, and long lines go through `stanbhm.layout`, which
lays them out as stanc formats them. So every choice visible in the program can be
traced to a Plan decision. The data dictionary and the output schema come from the
same parts that wrote the program, so they cannot disagree.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jinja2

from .layout import call, returned, signature, statement, wrap
from .plan import Plan
from .program import OutputSchema, Program
from .reduce import level_slice, row_slice
from .version import __version__

#: Dims that stanbhm itself names; a grouping factor with one of these names keeps its
#: own name and the internal dim gets a trailing "_".
INTERNAL_DIMS = ("coef", "row", "obs_id", "new_row")


def template_dir() -> Path:
    """The templates: package data beside this module, in a checkout and installed alike."""
    return Path(__file__).resolve().parent / "stan_templates"


_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def comment_text(text: object) -> str:
    """User text made safe inside a ``//`` comment: no character can end the line."""
    return _LINE_BREAKS.sub(" ", str(text))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["comment"] = comment_text
    env.globals["wrap"] = wrap  # long signatures and calls, laid out as stanc formats them
    env.globals["statement"] = statement  # long expressions, likewise
    env.globals["signature"] = signature  # a function's signature, likewise
    env.globals["returned"] = returned  # a return statement, likewise
    env.globals["call"] = call  # a statement whose expression is one call, likewise
    env.globals["row_slice"] = row_slice  # a threaded likelihood's slice of rows
    env.globals["level_slice"] = level_slice  # and of levels of the term integrated out
    return env


def render_code(plan: Plan) -> str:
    """The Stan program for ``plan`` (deterministic: same plan, same text)."""
    text = environment().get_template("program.stan.j2").render(p=plan, version=__version__)
    return text.strip() + "\n"


def schema(plan: Plan) -> OutputSchema:
    """Dims and coords of every output, from the parts."""
    factors = {g.name for g in plan.groups}
    rename = {}
    for dim in INTERNAL_DIMS:
        new = dim
        while new in factors:
            new += "_"
        rename[dim] = new
    dims: dict[str, list[str]] = {}
    coords: dict[str, list[str]] = {}
    for part in plan.parts:
        for out in part.outputs():
            if out.dims:
                dims[out.name] = [rename.get(d, d) for d in out.dims]
        for dim, values in part.coords().items():
            coords[rename.get(dim, dim)] = values
    dims["y"] = [rename["obs_id"]]
    lik = plan.likelihood
    return OutputSchema(
        dims=dims, coords=coords, log_lik="log_lik" if lik.log_lik else None,
        y_rep="y_rep" if lik.y_rep else None, y_observed=lik.y,
        unchecked=tuple(f"sd_{g.ident}_signed" for g in plan.groups if g.folded),
        internal=tuple(out.name for part in plan.parts for out in part.outputs()
                       if out.internal),
    )


def render(plan: Plan) -> Program:
    """The program, its data dictionary and its output schema."""
    return Program(code=render_code(plan), data=plan.data(), schema=schema(plan),
                   cpp_options=plan.cpp_options, stanc_options=plan.stanc_options,
                   prior_data=plan.prior_data())
