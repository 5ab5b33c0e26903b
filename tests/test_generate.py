"""Text generation: KV-cache equivalence, decoding strategies' semantics, inference configs and the CLI."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from shakespeare.checkpoint import save_checkpoint
from shakespeare.errors import UserError
from shakespeare.generate import InferenceConfig, build_parser, generate, read_config_file, resolve_config
from shakespeare.generate import main as generate_main
from shakespeare.model import GPT, POS_ENCODINGS, GPTConfig, IncrementalDecoder
from shakespeare.sampling import (
    Hypothesis,
    beam_search,
    filter_logits,
    generate_tokens,
    next_token,
    sample_text,
)
from shakespeare.tokenizer import CharTokenizer

REPO = Path(__file__).resolve().parent.parent
GENERATE = REPO / "shakespeare" / "generate.py"
VOCAB = sorted(set("\nabcdefgh ,.!"))  # 13 characters


def tiny_gpt(pos_encoding: str = "learned", vocab_size: int = len(VOCAB), block_size: int = 16, seed: int = 0,
             std: float = 0.3) -> GPT:
    """A random 2-layer GPT whose weights are large enough for peaked, tie-free next-token distributions."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16,
                          pos_encoding=pos_encoding))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std)
    return model.eval()


def seq_logprob(model: GPT, prompt: list[int], continuation: list[int], temperature: float = 1.0) -> float:
    """Sum of log softmax(logits / T) of the continuation, by one full forward pass (short sequences only)."""
    seq = torch.tensor([prompt + continuation])  # (1, T)
    assert seq.size(1) <= model.config.block_size
    with torch.no_grad():
        logp = F.log_softmax(model(seq)[0].double() / temperature, dim=-1)  # (T, V)
    n = len(prompt)
    return sum(float(logp[n - 1 + i, tok]) for i, tok in enumerate(continuation))


class BigramLogits(GPT):
    """A stub model with known logits: the next-token logits are table[last token], whatever came before."""

    def __init__(self, table: torch.Tensor, block_size: int = 8):
        config = GPTConfig(vocab_size=table.size(0), block_size=block_size, n_layer=1, n_head=1, n_embd=4)
        super().__init__(config)
        self.register_buffer("table", table)  # (V, V)

    def forward(self, idx: torch.Tensor, cache=None) -> torch.Tensor:
        if cache is not None:
            cache.length += idx.size(1)
        return self.table[idx]  # (B, T, V)


# ------------------------------------------------------------------------------------------------------------
# KV cache


@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
@pytest.mark.parametrize("slide", [1, 5, None])
def test_cached_logits_equal_full_recompute_at_every_step(pos_encoding: str, slide: int | None) -> None:
    model = tiny_gpt(pos_encoding)
    block = model.config.block_size
    gen = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, model.config.vocab_size, (2, 5), generator=gen)  # (B, T)
    cached = IncrementalDecoder(model, 2, use_cache=True, slide=slide)
    plain = IncrementalDecoder(model, 2, use_cache=False, slide=slide)
    a, b = cached.prefill(prompt), plain.prefill(prompt)
    history = prompt
    slides = 0
    for _ in range(2 * block + 3):
        with torch.no_grad():
            full = model(cached.context)[:, -1]  # (B, V)
        torch.testing.assert_close(a, full, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        tok = torch.randint(0, model.config.vocab_size, (2,), generator=gen)
        before = cached.context.size(1)
        a, b = cached.step(tok), plain.step(tok)
        history = torch.cat([history, tok[:, None]], dim=1)
        n = cached.context.size(1)
        slides += n <= before
        assert n <= block
        assert torch.equal(cached.context, history[:, -n:])  # the window is always the latest tokens
        assert torch.equal(cached.context, plain.context)
    assert slides >= 3  # the window did slide, and the checks above ran after every slide


@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
def test_prefill_longer_than_window_and_reorder_keep_logits_exact(pos_encoding: str) -> None:
    model = tiny_gpt(pos_encoding)
    gen = torch.Generator().manual_seed(2)
    prompt = torch.randint(0, model.config.vocab_size, (3, 40), generator=gen)  # longer than block_size 16
    dec = IncrementalDecoder(model, 3)
    logits = dec.prefill(prompt)
    assert torch.equal(dec.context, prompt[:, -16:])
    for step in range(30):
        index = torch.tensor([2, 0, 2]) if step % 2 else torch.tensor([1, 2, 0])
        dec.reorder(index)
        logits = dec.step(logits.index_select(0, index).argmax(-1))
        with torch.no_grad():
            torch.testing.assert_close(logits, model(dec.context)[:, -1], atol=1e-5, rtol=1e-5)


def test_decoding_runs_no_forward_pass_after_the_last_token() -> None:
    model = tiny_gpt()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    ids = torch.tensor([[1, 2, 3]])
    assert len(list(generate_tokens(model, ids, 40, temperature=0))) == 40
    assert len(calls) == 40  # one prefill + 39 steps (slides re-encode instead of stepping)
    calls.clear()
    beam_search(model, ids, 12, beam_width=3)
    assert len(calls) == 12
    calls.clear()
    assert list(generate_tokens(model, ids, 0)) == [] and not calls


# ------------------------------------------------------------------------------------------------------------
# Strategies


@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
def test_greedy_equals_beam_search_of_width_one(pos_encoding: str) -> None:
    model = tiny_gpt(pos_encoding, seed=3)
    ids = torch.tensor([[0, 4, 5, 6]])
    greedy = [int(t) for t in generate_tokens(model, ids, 50, temperature=0)]  # 50 > block_size: slides too
    (beam,) = beam_search(model, ids, 50, beam_width=1)
    assert beam.tokens == greedy
    assert len(set(greedy)) > 1  # not a degenerate constant output


@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_beam_search_log_prob_is_exact_and_at_least_greedys(pos_encoding: str, temperature: float) -> None:
    prompt = [0, 3]
    for seed in range(3):
        model = tiny_gpt(pos_encoding, seed=10 + seed, std=0.15)
        ids = torch.tensor([prompt])
        greedy = [int(t) for t in generate_tokens(model, ids, 12, temperature=0)]
        hyps = beam_search(model, ids, 12, beam_width=4, temperature=temperature, num_return=4)
        for h in hyps:  # the log-prob beam search tracked equals a full forward pass's
            assert h.logprob == pytest.approx(seq_logprob(model, prompt, h.tokens, temperature), abs=1e-4)
        assert [h.logprob for h in hyps] == sorted((h.logprob for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 4  # distinct beams
        # Never below greedy (plain beam search can prune the greedy path; ours keeps it as a candidate).
        assert hyps[0].logprob >= seq_logprob(model, prompt, greedy, temperature) - 1e-4


def test_wide_enough_beam_search_is_exact_search() -> None:
    """With W >= V**(n-1) no prefix is ever pruned, so beam search must find the n-token argmax."""
    model = tiny_gpt(vocab_size=3, seed=5, std=0.5)
    prompt, n = [1], 4
    everything = [list(s) for s in itertools.product(range(3), repeat=n)]
    scored = sorted(((seq_logprob(model, prompt, s), s) for s in everything), reverse=True)
    hyps = beam_search(model, torch.tensor([prompt]), n, beam_width=27, num_return=5)
    assert [h.tokens for h in hyps] == [s for _, s in scored[:5]]
    assert [h.logprob for h in hyps] == pytest.approx([lp for lp, _ in scored[:5]], abs=1e-4)


def test_beam_search_stop_and_length_penalty() -> None:
    model = tiny_gpt(seed=7, std=0.15)
    stop = [int(list(generate_tokens(model, torch.tensor([[0]]), 4, 0))[-1])]  # a token greedy emits early
    ranked = {}
    for alpha in (0.0, 1.0):
        hyps = beam_search(model, torch.tensor([[0]]), 30, beam_width=6, num_return=6, stop=stop,
                           length_penalty=alpha)
        for h in hyps:
            assert h.finished == (h.tokens[-1:] == stop)
            assert stop[0] not in h.tokens[:-1]  # a beam ends at its first stop
            assert h.finished or len(h.tokens) == 30
        scores = [h.score(alpha) for h in hyps]
        assert scores == sorted(scores, reverse=True)
        ranked[alpha] = hyps
    # The raw sum favours short finished beams; normalising by length lets longer beams win.
    assert ranked[0.0][0].finished
    assert len(ranked[1.0][0].tokens) > len(ranked[0.0][0].tokens)
    assert Hypothesis([1, 2, 3, 4], -8.0).score(1.0) == -2.0 and Hypothesis([1, 2], -8.0).score(0.0) == -8.0


def test_top_k_never_emits_a_token_outside_the_top_k() -> None:
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(12, 12, generator=gen) * 2  # (V, V) known bigram logits
    model = BigramLogits(table).eval()
    for k in (1, 3, 5):
        stream = generate_tokens(model, torch.tensor([[0]]), 600, 1.3, top_k=k, generator=gen)
        tokens = [int(t) for t in stream]
        prev = [0] + tokens[:-1]
        allowed = table.topk(k, dim=-1).indices  # (V, k)
        assert all(t in allowed[p].tolist() for p, t in zip(prev, tokens, strict=True))
        if k == 1:  # top-1 is greedy
            assert tokens == [int(t) for t in generate_tokens(model, torch.tensor([[0]]), 600, 0)]
    # The k survivors are drawn in proportion to their renormalised probabilities.
    logits = torch.randn(1, 12, generator=gen)
    draws = next_token(logits.expand(40_000, -1), 0.8, top_k=4, generator=gen)
    top = logits[0].topk(4)
    expected = (top.values / 0.8).softmax(-1)
    freq = torch.bincount(draws, minlength=12).double() / draws.numel()
    assert set(draws.unique().tolist()) == set(top.indices.tolist())
    torch.testing.assert_close(freq[top.indices], expected.double(), atol=0.01, rtol=0)


def nucleus(probs: torch.Tensor, p: float) -> set[int]:
    """Reference: the smallest set of most likely tokens whose probability mass reaches p."""
    order = probs.argsort(descending=True).tolist()
    kept, mass = set(), 0.0
    for i in order:
        kept.add(i)
        mass += float(probs[i])
        if mass >= p:
            break
    return kept


def test_top_p_keeps_exactly_the_nucleus_and_sampling_respects_it() -> None:
    gen = torch.Generator().manual_seed(4)
    for _ in range(200):
        logits = torch.randn(1, 15, generator=gen, dtype=torch.float64) * 2
        p = float(torch.rand(1, generator=gen, dtype=torch.float64)) * 0.98 + 0.01
        kept = set(torch.isfinite(filter_logits(logits, top_p=p))[0].nonzero().flatten().tolist())
        assert kept == nucleus(logits[0].softmax(-1), p)
    assert torch.isfinite(filter_logits(logits, top_p=1.0)).all()
    table = torch.randn(10, 10, generator=gen) * 2
    model = BigramLogits(table).eval()
    temperature, p = 0.9, 0.6
    stream = generate_tokens(model, torch.tensor([[0]]), 800, temperature, top_p=p, generator=gen)
    tokens = [int(t) for t in stream]
    for prev, tok in zip([0] + tokens[:-1], tokens, strict=True):
        assert tok in nucleus((table[prev] / temperature).softmax(-1), p)


def test_temperature_zero_is_greedy_for_every_sampling_strategy() -> None:
    logits = torch.randn(64, 20)
    for kw in ({}, {"top_k": 5}, {"top_p": 0.5}):
        assert torch.equal(next_token(logits, 0.0, **kw), logits.argmax(-1))


def test_same_seed_same_text_and_sample_text_unchanged() -> None:
    model, tok = tiny_gpt(std=0.1), CharTokenizer(VOCAB)

    def text(seed: int) -> str:
        return sample_text(model, tok, "abc", 60, top_k=8, generator=torch.Generator().manual_seed(seed))

    assert text(1) == text(1)
    assert text(1) != text(2)
    assert text(1).startswith("abc") and len(text(1)) == 63


# ------------------------------------------------------------------------------------------------------------
# Inference configs and the CLI


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, tiny_gpt(std=0.1), VOCAB, {"val_loss": 2.0}, {})
    return path


def run_generate(capsys, *argv: str) -> str:
    cfg = resolve_config(build_parser().parse_args(list(argv)))
    generate(cfg)
    return capsys.readouterr().out


@pytest.mark.parametrize("strategy", ["sample", "top_k", "top_p", "greedy", "beam"])
def test_output_is_prompt_then_continuation_and_seeds_reproduce(capsys, ckpt: Path, strategy: str) -> None:
    args = ("--model", str(ckpt), "--strategy", strategy, "--num_tokens", "40", "--prompt", "bad cab")
    out = run_generate(capsys, *args, "--seed", "1")
    assert out.startswith("bad cab")
    assert len(out) == 7 + 40 + (not out[:47].endswith("\n"))  # prompt, 40 characters, newline if none
    assert run_generate(capsys, *args, "--seed", "1") == out
    if strategy in ("sample", "top_k", "top_p"):
        assert run_generate(capsys, *args, "--seed", "2") != out
    assert run_generate(capsys, *args, "--seed", "1", "--no_kv_cache") == out  # the cache changes nothing


def test_from_scratch_prints_only_the_continuation_and_samples_are_separated(capsys, ckpt: Path) -> None:
    out = run_generate(capsys, "--model", str(ckpt), "--num_tokens", "30", "--strategy", "greedy")
    model = tiny_gpt(std=0.1)
    greedy = [int(t) for t in generate_tokens(model, torch.tensor([[VOCAB.index("\n")]]), 30, 0)]
    expected = CharTokenizer(VOCAB).decode(greedy)
    assert out == (expected if expected.endswith("\n") else expected + "\n")
    out = run_generate(capsys, "--model", str(ckpt), "--num_tokens", "20", "--num_samples", "3",
                       "--seed", "0")
    assert [line for line in out.splitlines() if line.startswith("=====")] == [
        f"===== sample {i}/3 =====" for i in (1, 2, 3)]
    out = run_generate(capsys, "--model", str(ckpt), "--num_tokens", "20", "--strategy", "beam",
                       "--beam_width", "3", "--num_samples", "2", "--prompt", "a")
    assert out.startswith("===== beam 1/2: log-prob ") and "\n===== beam 2/2: log-prob " in out


def test_stop_ends_a_sample(capsys, ckpt: Path) -> None:
    out = run_generate(capsys, "--model", str(ckpt), "--num_tokens", "400", "--strategy", "sample",
                       "--temperature", "3", "--seed", "3", "--stop", "a", "--prompt", "h")
    assert out.rstrip("\n").endswith("a") and out.count("a") == 1 and len(out) < 200


def test_flags_the_strategy_ignores_get_a_note(capsys, monkeypatch, ckpt: Path) -> None:
    argv = ["generate.py", "--model", str(ckpt), "--strategy", "greedy", "--num_tokens", "5", "--top_k", "3",
            "--temperature", "0.5"]
    monkeypatch.setattr(sys, "argv", argv)
    assert generate_main() == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["note: --temperature has no effect with --strategy greedy",
                   "note: --top_k has no effect with --strategy greedy"]


def test_config_precedence_defaults_file_flags(tmp_path: Path) -> None:
    cfg_file = tmp_path / "mine.json"
    cfg_file.write_text(json.dumps({"strategy": "top_k", "top_k": 3, "temperature": 0.5, "model": "m.pt"}))
    cfg = resolve_config(build_parser().parse_args(["--config", str(cfg_file), "--temperature", "0.9"]))
    assert (cfg.strategy, cfg.top_k, cfg.temperature) == ("top_k", 3, 0.9)  # file < flag
    assert cfg.num_tokens == InferenceConfig().num_tokens  # defaults < file
    assert Path(cfg.model) == tmp_path / "m.pt"  # relative to the config file
    # Without --config, the strategy's shipped config supplies the tuned defaults.
    beam = resolve_config(build_parser().parse_args(["--strategy", "beam"]))
    assert beam.strategy == "beam"
    assert beam.beam_width == read_config_file(REPO / "shakespeare" / "models" / "beam.json").get(
        "beam_width", InferenceConfig().beam_width)
    assert resolve_config(build_parser().parse_args([])).strategy == "top_p"


@pytest.mark.parametrize(("content", "expected"), [
    ('{"top_k": "ten"}', "'top_k' must be int"),
    ('{"temperature": true}', "'temperature' must be float"),
    ('{"seed": 1.5}', "'seed' must be int or null"),
    ('["top_k", 3]', "must be a JSON object"),
    ('{"top_k": 3,}', "is not valid JSON"),
    ('{"strategy": "nucleus"}', "--strategy must be one of"),
    ('{"top_p": 0}', "--top_p must be in (0, 1]"),
])
def test_bad_inference_configs_are_user_errors(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=re.escape(expected)):
        resolve_config(build_parser().parse_args(["--config", str(path)]))


@pytest.mark.parametrize("name", ["greedy", "sample", "top_k", "top_p", "beam"])
def test_shipped_inference_configs_are_valid(name: str) -> None:
    path = REPO / "shakespeare" / "models" / f"{name}.json"
    data = read_config_file(path)
    assert data["strategy"] == name
    resolve_config(build_parser().parse_args(["--config", str(path)]))


def cli(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.mark.parametrize("how", ["file", "module", "package_folder"])
def test_cli_runs_as_file_module_and_from_the_package_folder(capsys, ckpt: Path, how: str) -> None:
    args = ["--model", str(ckpt), "--prompt", "ab", "--num_tokens", "25", "--strategy", "top_p",
            "--seed", "5"]
    if how == "file":
        res = cli(str(GENERATE), *args)
    elif how == "module":
        res = cli("-m", "shakespeare.generate", *args)
    else:
        res = cli("generate.py", *args, cwd=REPO / "shakespeare")
    assert res.returncode == 0, res.stderr
    assert res.stdout == run_generate(capsys, *args)  # the same text as in-process, from the same seed
    assert res.stdout.startswith("ab") and len(res.stdout) == 27 + (not res.stdout[:27].endswith("\n"))


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    incompatible = tmp_path / "incompatible.pt"
    torch.save({"model": {}, "config": {"n_embd": 10, "n_head": 3}, "vocab": VOCAB}, incompatible)
    unknown_key = tmp_path / "unknown.json"
    unknown_key.write_text(json.dumps({"strategy": "top_k", "topk": 5}))
    return {"corrupt": corrupt, "incompatible": incompatible, "unknown_key": unknown_key,
            "missing": tmp_path / "nope.pt"}


BAD_INPUTS = {
    "prompt_chars": (["--prompt", "abcZ~"], "'Z', '~'"),
    "negative_temperature": (["--temperature", "-0.5"], "--temperature must be >= 0"),
    "top_k_zero": (["--top_k", "0"], "--top_k must be >= 1"),
    "top_p_zero": (["--top_p", "0"], "--top_p must be in (0, 1]"),
    "top_p_above_one": (["--top_p", "1.5"], "--top_p must be in (0, 1]"),
    "beam_width_zero": (["--strategy", "beam", "--beam_width", "0"], "--beam_width must be >= 1"),
    "negative_num_tokens": (["--num_tokens", "-1"], "--num_tokens must be >= 0"),
    "more_beams_than_width": (["--strategy", "beam", "--beam_width", "2", "--num_samples", "3"],
                              "must not exceed --beam_width"),
    "missing_checkpoint": (["--model", "{missing}", "--top_k", "5"], "not found"),  # no note on --top_k
    "corrupt_checkpoint": (["--model", "{corrupt}"], "corrupt"),
    "incompatible_checkpoint": (["--model", "{incompatible}"], "incompatible model config"),
    "unknown_config_key": (["--config", "{unknown_key}"], "unknown key(s) 'topk'"),
    "bad_flag_value": (["--top_k", "three"], "--top_k"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_one_clear_line_exit_2_nothing_written(case: str, ckpt: Path, bad_files: dict) -> None:
    argv, expected = BAD_INPUTS[case]
    argv = [a.format(**{k: str(v) for k, v in bad_files.items()}) for a in argv]
    if "--model" not in argv:
        argv = ["--model", str(ckpt), *argv]
    before = sorted(p.name for p in ckpt.parent.iterdir())
    res = cli(str(GENERATE), *argv, "--num_tokens" if "--num_tokens" not in argv else "--seed", "5")
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert expected in lines[0]
    assert sorted(p.name for p in ckpt.parent.iterdir()) == before


def test_log_prob_reference_is_consistent() -> None:
    """Sanity check of the test helper itself: the log-probs of all continuations sum to probability 1."""
    model = tiny_gpt(vocab_size=3, seed=1)
    total = sum(math.exp(seq_logprob(model, [0], list(s))) for s in itertools.product(range(3), repeat=3))
    assert total == pytest.approx(1.0, abs=1e-6)
