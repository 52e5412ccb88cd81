"""The package's version: a module of its own, so that a module below the package root
(`render`, `cli`) and the build (pyproject.toml) read it without importing the package."""

__version__ = "0.1.0"
