"""PositionalEncoding.ipynb: committed with its figures; executed headless with the shipped model and the
committed ablation results, it prints checks that hold and the ablation's own numbers (~15 s on a busy
2-core machine, so not marked slow)."""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from notebook_utils import REPO_ROOT, cell_text, execute_notebook

NOTEBOOK = "PositionalEncoding.ipynb"
MODEL = "shakespeare/models/lite-learned.pt"
ABLATION = "bench/results/pos_ablation.json"
NUM = r"([-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?)"


def test_notebook_is_committed_with_rendered_figures() -> None:
    nb = nbformat.read(REPO_ROOT / NOTEBOOK, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells), f"execute {NOTEBOOK} and save it with outputs"
    images = sum("image/png" in o.get("data", {}) for c in code_cells for o in c.outputs)
    assert images >= 11
    assert not any(o.get("output_type") == "error" for c in code_cells for o in c.outputs)
    assert (REPO_ROOT / NOTEBOOK).stat().st_size < 2 * 2**20
    source = "\n".join(c.source for c in code_cells)
    # the shipped files are what the notebook reads by default, each named once
    assert source.count(f'"{MODEL}"') == 1 and source.count(f'"{ABLATION}"') == 1


def _floats(pattern: str, text: str) -> list[float]:
    found = [float(x) for x in re.findall(pattern, text)]
    assert found, f"the notebook did not print {pattern!r}"
    return found


def test_notebook_executes_and_its_checks_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    for path, how in ((MODEL, "train it: python shakespeare/train.py --config lite --pos_encoding learned "
                              "--run_name lite-learned"),
                      (ABLATION, "produce it: python bench/pos_ablation.py")):
        if not (REPO_ROOT / path).exists():
            pytest.skip(f"{path} is missing; {how}")
    monkeypatch.delenv("PE_MODEL", raising=False)  # the kernel inherits the environment: use the shipped files
    monkeypatch.delenv("PE_ABLATION", raising=False)
    text = cell_text(execute_notebook(NOTEBOOK))  # raises on any cell error

    # sinusoids: PE[p].PE[p+k] independent of p and symmetric in k; PE[p+k] = R_k PE[p]
    assert _floats(r"max spread of PE\[p\]\.PE\[p\+k\] over p.*?: " + NUM, text)[0] < 1e-4
    assert _floats(r"symmetry: .*?: " + NUM, text)[0] < 1e-4
    rows = re.findall(r"^\s+(\d+)\s+" + NUM + r"\s+" + NUM + "$", text, re.M)
    assert len(rows) == 6 and all(float(err) < 1e-6 and float(orth) < 1e-12 for _, err, orth in rows)
    # RoPE: norms kept, scores depend on m - n only (the additive encoding's do not), even after big shifts
    assert _floats(r"\|\|RoPE_m\(x\)\|\| - \|\|x\|\| \| over m < 1000: " + NUM, text)[0] < 1e-5
    rope, additive = re.search(r"RoPE " + NUM + r", additive " + NUM, text).groups()
    assert float(rope) < 1e-4 and float(additive) > 1
    assert all(x < 1e-4 for x in _floats(r"max \|score change\| = " + NUM, text))
    # RoFormer's bound: a larger base decays over longer distances
    quarter = [int(x) for x in re.findall(r"^\s*[\d,]+ (?:\s*\d+\.\d\d){4}\s+(\d+)$", text, re.M)]
    assert len(quarter) == 5 and quarter == sorted(quarter) and len(set(quarter)) == 5
    # learned embeddings: the shipped model is the one analysed, next to exactly Toeplitz sinusoids
    assert f"model {MODEL}:" in text
    assert re.search(r"depends only on \|p - q\|': learned -?\d\.\d\d, sinusoids 1\.00", text)
    # ablation: the recorded command, machine and every run's numbers, read from the JSON, not typed in
    abl = json.loads((REPO_ROOT / ABLATION).read_text())
    assert f"command: {abl['command']}" in text and abl["machine"] in text
    assert {r["pos_encoding"] for r in abl["runs"]} == {"learned", "sinusoidal", "rope", "none"}
    for r in abl["runs"]:
        assert re.search(rf"^{r['pos_encoding']}\s+{r['val_loss']:.4f}\s", text, re.M)
