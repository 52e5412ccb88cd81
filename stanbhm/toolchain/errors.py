"""Exceptions raised by the toolchain, so callers can tell a bad program from a broken setup."""

from __future__ import annotations

from ..errors import StanbhmError


class ToolchainError(StanbhmError, RuntimeError):
    """The Stan toolchain is missing, incomplete, or cannot be built here."""


class StanCompileError(StanbhmError, ValueError):
    """stanc or the C++ compiler rejected a program.

    Carries the compiler's own message, which already quotes the offending line.
    """

    def __init__(self, message: str, *, stage: str, output: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.output = output
