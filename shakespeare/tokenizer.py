"""Character tokenizer and data preparation: input.txt -> vocab.json, train.bin, val.bin.

Vocabulary = the sorted unique characters of the text; the first 90% of characters are the train split and the
last 10% the val split (the convention of published Tiny Shakespeare results, so numbers compare).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as a file: put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from shakespeare import DATA_DIR
from shakespeare.errors import UserError, run_cli
from shakespeare.io import atomic_write_bytes

CANONICAL_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
CANONICAL_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TRAIN_FRACTION = 0.9
ID_DTYPE = np.uint16


class CharTokenizer:
    """Maps characters to integer ids and back (one id per character)."""

    def __init__(self, chars: list[str]):
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise UserError("vocabulary must be a list of distinct single characters; rebuild it with tokenizer.py")
        if len(chars) > np.iinfo(ID_DTYPE).max:
            raise UserError(f"{len(chars)} distinct characters do not fit uint16 ids; use a smaller corpus")
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"vocabulary not found at {path}; run `python shakespeare/tokenizer.py` first")
        try:
            chars = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{path} is not a valid vocabulary ({err}); rerun shakespeare/tokenizer.py") from err
        if not isinstance(chars, list):
            raise UserError(f"{path} is not a JSON list of characters; rerun shakespeare/tokenizer.py")
        return cls(chars)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of `text` that are not in the vocabulary, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.stoi))

    def encode(self, text: str) -> list[int]:
        unknown = self.unknown_chars(text)
        if unknown:
            shown = ", ".join(repr(c) for c in unknown)
            raise UserError(f"characters not in the model's vocabulary: {shown}; remove or replace them")
        return [self.stoi[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> str:
        return json.dumps(self.chars, ensure_ascii=False)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_canonical(dest: Path, timeout: float = 20.0) -> None:
    """Download Tiny Shakespeare, verify its SHA-256, write it atomically to `dest`."""
    try:
        with urllib.request.urlopen(CANONICAL_URL, timeout=timeout) as resp:
            data = resp.read()
    except OSError as err:
        raise UserError(
            f"Tiny Shakespeare is not at {dest} and could not be downloaded ({err.__class__.__name__}); "
            f"copy input.txt there (or pass --input PATH)"
        ) from err
    if sha256_of(data) != CANONICAL_SHA256:
        raise UserError(
            f"the downloaded file's SHA-256 does not match Tiny Shakespeare; copy the real file to {dest}"
        )
    atomic_write_bytes(dest, data)


def resolve_input(input_path: str | Path | None, out_dir: Path) -> Path:
    """--input if given, else the cached <out_dir>/input.txt, else download it there."""
    if input_path is not None:
        path = Path(input_path)
        if not path.is_file():
            raise UserError(f"--input {path} does not exist; pass the path of a text file")
        return path
    cached = out_dir / "input.txt"
    if not cached.is_file():
        print(f"downloading Tiny Shakespeare to {cached} ...", file=sys.stderr)
        download_canonical(cached)
    return cached


def read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text; pass a UTF-8 text file") from err
    if len(text) < 100:
        raise UserError(f"{path} holds {len(text)} characters; a corpus needs at least 100")
    return text


def split_point(n_chars: int) -> int:
    return int(n_chars * TRAIN_FRACTION)


def prepare(input_path: str | Path | None = None, out_dir: str | Path = DATA_DIR) -> dict:
    """Write vocab.json, train.bin, val.bin into out_dir; return a small summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = resolve_input(input_path, out_dir)
    text = read_text(src)
    tok = CharTokenizer.from_text(text)
    ids = np.array(tok.encode(text), dtype=ID_DTYPE)
    cut = split_point(len(ids))
    atomic_write_bytes(out_dir / "train.bin", ids[:cut].tobytes())
    atomic_write_bytes(out_dir / "val.bin", ids[cut:].tobytes())
    atomic_write_bytes(out_dir / "vocab.json", tok.to_json().encode("utf-8"))
    return {
        "input": str(src),
        "sha256": sha256_of(text.encode("utf-8")),
        "chars": len(text),
        "vocab_size": tok.vocab_size,
        "train_tokens": cut,
        "val_tokens": len(ids) - cut,
    }


def load_split(data_dir: str | Path, split: str) -> np.ndarray:
    """The ids of one split ('train' or 'val') as a read-only uint16 memmap."""
    path = Path(data_dir) / f"{split}.bin"
    if not path.is_file():
        raise UserError(f"{path} not found; run `python shakespeare/tokenizer.py` (or pass --data_path DIR)")
    if path.stat().st_size == 0 or path.stat().st_size % np.dtype(ID_DTYPE).itemsize:
        raise UserError(f"{path} is empty or truncated; rerun `python shakespeare/tokenizer.py`")
    return np.memmap(path, dtype=ID_DTYPE, mode="r")


def load_vocab(data_dir: str | Path) -> CharTokenizer:
    return CharTokenizer.load(Path(data_dir) / "vocab.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=None,
                        help="text file to tokenize (default: <out_dir>/input.txt, downloaded if missing)")
    parser.add_argument("--out_dir", default=str(DATA_DIR),
                        help="where vocab.json, train.bin and val.bin are written (default: %(default)s)")
    args = parser.parse_args()
    info = prepare(args.input, args.out_dir)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    run_cli(main)
