"""Shared fixtures: a small deterministic corpus and its tokenized data (hermetic, no Tiny Shakespeare)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from shakespeare.tokenizer import prepare

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
