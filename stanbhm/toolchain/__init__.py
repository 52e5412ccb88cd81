"""The Stan toolchain: find or build a CmdStan; compile programs into a content cache."""

from .cache import OPTIMIZED, compile_model
from .errors import StanCompileError, ToolchainError
from .locate import Installation, ensure_cmdstan, find_installation
from .offline import build_offline
from .opencl import choose_device, devices, opencl_missing

__all__ = [
    "OPTIMIZED",
    "Installation",
    "StanCompileError",
    "ToolchainError",
    "build_offline",
    "choose_device",
    "compile_model",
    "devices",
    "ensure_cmdstan",
    "find_installation",
    "opencl_missing",
]
