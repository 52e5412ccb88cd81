"""Execute the notebooks in place, keeping their outputs (plots included), so a reader
sees them without running anything. Needs the ``notebooks`` extra (nbclient, ipykernel):

    pip install -e '.[notebooks]'
    python scripts/run_notebooks.py [notebooks/name.ipynb ...]

Each notebook runs at its full size in a fresh kernel from ``notebooks/``; a notebook
is rewritten only when all its cells ran (atomically), so a failure leaves it as it was.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run(path: Path) -> float:
    start = time.perf_counter()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        nbformat.write(nb, fh)
    os.replace(tmp, path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    for path in args.paths or sorted(NOTEBOOKS.glob("*.ipynb")):
        print(f"{path.name}: {run(path.resolve()):.0f} s", flush=True)


if __name__ == "__main__":
    main()
