"""Headless notebook execution for tests: nbclient, this interpreter's python3 kernel, cwd = repo root."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[1]


def execute_notebook(path: str | Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell of the notebook at `path` (relative to the repository root) and return it with outputs.

    Raises nbclient's CellExecutionError, naming the cell and the traceback, if any cell fails. The file on
    disk is not modified.
    """
    nb = nbformat.read(REPO_ROOT / path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}
    )
    client.execute()
    return nb


def cell_text(nb: nbformat.NotebookNode) -> str:
    """All text written by the notebook's code cells (streams and plain-text results), concatenated."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)
