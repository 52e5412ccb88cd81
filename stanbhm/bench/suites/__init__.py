"""One module per ``stanbhm bench`` suite: ``DEFAULTS`` and ``QUICK`` options and ``run``."""
