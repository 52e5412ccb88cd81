"""What a fit prints: progress bars while it runs, and each real problem once.

CmdStanPy logs every compile and chain at INFO, repeats as "Non-fatal error during
sampling" the proposals rejected in the first warmup iterations (routine: the step size
is still far too large there, and adaptation recovers), adds its own divergence warning
beside stanbhm's `advice`, and after its progress bars writes a line of spaces per chain
to stdout, which lands in piped CLI output. Inside `quiet` those go; CmdStanPy's errors
and any other warning still show, and rejections after warmup, the ones that do mean
something, reach the user through `Fit.advice` (`rejections_after_warmup`).
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TextIO

__all__ = ["quiet", "rejections_after_warmup", "transcripts"]

# ArviZ 0.23 announces its 1.0 refactor with a FutureWarning on import, in every session
# of every user; stanbhm requires arviz<1, so the change it announces does not reach them.
warnings.filterwarnings("ignore", message="\nArviZ is undergoing a major refactor",
                        category=FutureWarning)

#: CmdStanPy warnings that stanbhm says better elsewhere, by their first words.
_SAID_ELSEWHERE = (
    "Non-fatal error during sampling",  # warmup's rejections; later ones: advice
    "Some chains may have failed to converge",  # divergences, tree depth: advice
    "The default behavior of CmdStanMLE.stan_variable()",  # Fit reshapes the values itself
)


#: CmdStanPy's log line for a chain that exited non-zero; Model.fit raises CmdStanError
#: with CmdStan's own message instead.
_CHAIN_FAILED = re.compile(r"^Chain \[\d+\] error: code")


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        message = record.getMessage()
        return not (message.startswith(_SAID_ELSEWHERE) or _CHAIN_FAILED.match(message))


class _NoPadding:
    """stdout without CmdStanPy's padding: writes of spaces alone, and the line break
    that follows them."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._padding = False

    def write(self, text: str) -> int:
        if text and not text.strip(" "):
            self._padding = True
            return len(text)
        if text == "\n" and self._padding:
            self._padding = False
            return len(text)
        self._padding = False
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextmanager
def quiet(show_console: bool = False) -> Iterator[None]:
    """CmdStanPy without its INFO lines, repeated warnings and blank stdout padding;
    with ``show_console`` (CmdStan's own output asked for) stdout is left alone."""
    logger = logging.getLogger("cmdstanpy")
    drop = _Drop()
    logger.addFilter(drop)
    try:
        if show_console:
            yield
        else:
            with redirect_stdout(_NoPadding(sys.stdout)):
                yield
    finally:
        logger.removeFilter(drop)


_ITERATION = re.compile(r"^Iteration:\s+\d+\s*/\s*\d+.*\((Warmup|Sampling)\)", re.MULTILINE)
_REJECTION = re.compile(r"^Exception: (.*)$", re.MULTILINE)


def transcripts(runset) -> list[str]:
    """What CmdStan wrote to the console, one text per process of a CmdStanPy run set
    (a transcript that cannot be read is left out)."""
    out = []
    for path in runset.stdout_files:
        try:
            out.append(Path(path).read_text(errors="replace"))
        except OSError:
            continue
    return out


def rejections_after_warmup(console: str) -> list[str]:
    """The rejection messages of one chain's CmdStan console output that come after its
    first sampling iteration (none when the output shows no iterations)."""
    sampling = next((m.start() for m in _ITERATION.finditer(console)
                     if m.group(1) == "Sampling"), None)
    if sampling is None:
        return []
    return [m.group(1).strip() for m in _REJECTION.finditer(console, sampling)]
