"""Plan -> Stan program text, through the Jinja templates in ``stan_templates/``.

Templates loop and branch on Plan fields and compute nothing, so every choice
visible in the program can be traced to a Plan decision.
"""

from __future__ import annotations

import importlib.resources
import re
from functools import lru_cache
from pathlib import Path

import jinja2

from . import __version__
from .plan import Plan


def template_dir() -> Path:
    """The templates: shipped as ``stanbhm.stan_templates`` or, in a checkout, at the top."""
    try:
        shipped = Path(str(importlib.resources.files("stanbhm.stan_templates")))
        if (shipped / "model.stan.j2").exists():
            return shipped
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[1] / "stan_templates"


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
    return env


def render(plan: Plan) -> str:
    """The Stan program for ``plan`` (deterministic: same plan, same text)."""
    text = environment().get_template("model.stan.j2").render(p=plan, version=__version__)
    return text.strip() + "\n"
