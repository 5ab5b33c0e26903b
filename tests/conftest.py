"""Shared fixtures: a small deterministic corpus and its tokenized data (hermetic), the real text when present,
and the notebook runner (tests/notebook_utils.py) for the notebook tests."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest
import torch
from notebook_utils import execute_notebook  # noqa: F401 - one notebook runner for every notebook test

from shakespeare import DATA_DIR
from shakespeare.tokenizer import prepare

REAL_TEXT = DATA_DIR / "input.txt"

ALPHABET = "abcdefghijklmnop ,.\n"  # 20 characters, newline included


def markov_text(n_chars: int = 5000, seed: int = 0, alphabet: str = ALPHABET) -> str:
    """Text from a seeded first-order Markov chain (a few likely successors per character): learnable."""
    rng = random.Random(seed)
    successors = {c: rng.sample(alphabet, 4) for c in alphabet}
    out = [alphabet[0]]
    for _ in range(n_chars - 1):
        nxt = successors[out[-1]]
        out.append(rng.choices(nxt, weights=(8, 4, 2, 1))[0])
    return "".join(out)


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """A ~5,000-character synthetic text file over (at most) 20 characters."""
    path = tmp_path / "corpus.txt"
    path.write_text(markov_text(), encoding="utf-8")
    return path


@pytest.fixture
def tiny_data(tiny_corpus: Path, tmp_path: Path) -> Path:
    """The tiny corpus tokenized (vocab.json, train.bin, val.bin); returns the folder."""
    out = tmp_path / "data"
    prepare(tiny_corpus, out)
    return out


@pytest.fixture(scope="session")
def tiny_data_shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like tiny_data, made once per session for module-scoped fixtures; treat it as read-only."""
    root = tmp_path_factory.mktemp("tiny_data_shared")
    (root / "corpus.txt").write_text(markov_text(), encoding="utf-8")
    prepare(root / "corpus.txt", root / "data")
    return root / "data"


@pytest.fixture
def real_text() -> Path:
    """The Tiny Shakespeare text (shakespeare/data/input.txt); skips when it is absent."""
    if not REAL_TEXT.is_file():
        pytest.skip(f"{REAL_TEXT} not present (CI copies it from ../shared)")
    return REAL_TEXT


@pytest.fixture
def in_process():
    """train.main() run inside pytest installs signal handlers and sets torch's thread count: undo both."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    threads = torch.get_num_threads()
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
    torch.set_num_threads(threads)
