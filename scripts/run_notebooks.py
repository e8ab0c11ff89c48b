"""Run the notebooks top to bottom and save them with their fresh outputs.

The notebooks are committed with their outputs, so that they read on a code-hosting
site without running them. After changing a notebook or the code it shows, run this
from the repository's root and commit what it rewrites::

    python scripts/run_notebooks.py                      # every notebook in notebooks/
    python scripts/run_notebooks.py notebooks/three_steps.ipynb

Each notebook runs in a new empty folder, so its training run is always
``lightning_logs/digits/version_0`` and nothing is left in the repository but the
notebook itself. The tests run the same function (``tests/test_notebooks.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_TIMEOUT_S = 600


def execute(path: Path, folder: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` with every cell run in order, in ``folder``.

    Raises ``nbclient.exceptions.CellExecutionError`` naming the cell that failed.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return notebook


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    paths = parser.parse_args(args).notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            notebook = execute(path, Path(folder))
        nbformat.write(notebook, path)
        print(f"{path}: ran in {time.perf_counter() - started:.0f} s, outputs saved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
