"""Tokenizer: round trip, split sizes, data resolution and its errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from shakespeare import REPO_ROOT
from shakespeare.errors import UserError
from shakespeare.tokenizer import CANONICAL_SHA256, CharTokenizer, load_split, prepare, sha256_of, split_point


def test_round_trip_and_sorted_vocabulary():
    text = "To be, or not to be:\nthat is the question."
    tok = CharTokenizer.from_text(text)
    assert tok.chars == sorted(set(text))
    assert tok.decode(tok.encode(text)) == text


def test_unknown_characters_are_named():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(UserError, match=r"'z', 'é'"):
        tok.encode("abzéz")


def test_prepare_writes_vocab_and_a_90_10_split(tiny_corpus, tmp_path):
    out = tmp_path / "d"
    info = prepare(tiny_corpus, out)
    text = tiny_corpus.read_text()
    chars = json.loads((out / "vocab.json").read_text())
    train, val = load_split(out, "train"), load_split(out, "val")
    assert chars == sorted(set(text))
    assert len(train) == split_point(len(text)) == int(0.9 * len(text)) and len(train) + len(val) == len(text)
    tok = CharTokenizer(chars)
    assert tok.decode(train) + tok.decode(val) == text
    assert train.dtype == np.uint16 and info["vocab_size"] == len(chars)


def test_real_text_has_the_published_shape(real_text):
    data = real_text.read_bytes()
    assert sha256_of(data) == CANONICAL_SHA256
    text = data.decode()
    assert len(text) == 1_115_394 and len(set(text)) == 65


def test_offline_without_the_file_fails_with_one_instruction_line(tmp_path):
    # A proxy that refuses connections stands in for "no internet": nothing may be written.
    env = {"PATH": "/usr/bin:/bin", "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    out = tmp_path / "empty"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "shakespeare/tokenizer.py"), "--out_dir", str(out)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "input.txt" in lines[0] and "--input" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not any(p.name != "." for p in out.iterdir() if p.is_file())


def test_missing_input_flag_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        prepare(tmp_path / "nope.txt", tmp_path / "d")
