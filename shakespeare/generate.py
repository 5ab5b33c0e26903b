"""Generate text from a trained checkpoint: greedy, sampling, top-k, top-p (nucleus) or beam search.

Settings come from three layers, later ones winning: the InferenceConfig defaults below < an inference config
(--config FILE; without it shakespeare/models/<strategy>.json, whose strategy is --strategy or top_p by
default) < the flags given on the command line. An inference config is a JSON object whose keys are the long
option names below without dashes (model, prompt, num_tokens, strategy, temperature, top_k, top_p, beam_width,
length_penalty, num_samples, seed, stop, device); any other key is an error. A relative "model" path in a
config file is relative to that file's folder.

Strategies (each next character is chosen from the model's logits over the last block_size characters):
  greedy  the most likely character (argmax); temperature, top_k and top_p are ignored.
  sample  sample from softmax(logits / T).
  top_k   sample from softmax(logits / T) restricted to the K most likely characters (renormalised).
  top_p   nucleus sampling: sample from softmax(logits / T) restricted to the smallest set of most likely
          characters whose probability mass reaches P (the most likely one is always kept), renormalised.
  beam    beam search of width W: keep the W most probable continuations at every step, where a continuation's
          log-prob is the sum over its characters of log softmax(logits / T), so T reshapes each step's
          distribution (T < 1 sharpens it towards greedy, T > 1 flattens it); T = 0 is scored as T = 1 (beam
          search is deterministic anyway). The kept beams are ranked at the end by logprob / L**A with L
          their number of generated characters and A = --length_penalty (0: raw sum, 1: mean log-prob per
          character); beams differ in length only when --stop ends some early, so without --stop A changes
          nothing.
  T = 0 makes sample, top_k and top_p greedy.

Output: the prompt followed by the continuation (with no --prompt the model starts from a newline, which is
not printed, so the output is the continuation alone). Sampling strategies and greedy stream characters as
they are chosen; beam search prints when it is done. With --num_samples N > 1 every text is preceded by a
header line "===== sample i/N =====" (for beam: "===== beam i/N: log-prob ... =====", best first).

The KV cache encodes the prompt once and then costs one single-token pass per character; when the window of
block_size characters is full, the oldest block_size/4 are dropped and the rest re-encoded from position 0, so
every logit is exactly that of a full forward pass over the characters kept (for every positional encoding).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from shakespeare import MODELS_DIR
from shakespeare.checkpoint import load_model
from shakespeare.device import DEVICES, resolve_device
from shakespeare.errors import UserError, run_cli
from shakespeare.sampling import beam_search, generate_tokens

STRATEGIES = ("greedy", "sample", "top_k", "top_p", "beam")
DEFAULT_STRATEGY = "top_p"
DEFAULT_MODEL = MODELS_DIR / "lite.pt"
SCRATCH_PROMPT = "\n"


@dataclass
class InferenceConfig:
    """Generation settings; an inference config JSON file holds a subset of these keys."""

    model: str | None = None  # checkpoint path; None = the shipped shakespeare/models/lite.pt
    prompt: str | None = None  # None or "" = start from a newline (not printed)
    num_tokens: int = 500  # characters to generate per sample
    strategy: str = DEFAULT_STRATEGY
    temperature: float = 1.0  # 0 = greedy (beam: scored as 1)
    top_k: int = 10
    top_p: float = 0.9
    beam_width: int = 5
    length_penalty: float = 0.0  # beam: rank by logprob / L**length_penalty
    num_samples: int = 1  # texts to sample (beam: best beams to print, <= beam_width)
    seed: int | None = None  # None = fresh randomness each run
    stop: str | None = None  # end a sample (or finish a beam) when its continuation ends with this text
    device: str = "cpu"


FIELDS = {f.name for f in dataclasses.fields(InferenceConfig)}
_HINTS = typing.get_type_hints(InferenceConfig)


def config_path_for(strategy: str) -> Path:
    """The shipped inference config of a strategy (used when --config is not given)."""
    return MODELS_DIR / f"{strategy}.json"


def _check_type(name: str, value, source: str) -> None:
    allowed = typing.get_args(_HINTS[name]) or (_HINTS[name],)
    if value is None:
        if type(None) in allowed:
            return
    elif isinstance(value, bool):
        pass  # JSON true/false is never a number or a string here
    elif float in allowed and isinstance(value, int | float):
        return
    elif int in allowed and isinstance(value, int):
        return
    elif str in allowed and isinstance(value, str):
        return
    kinds = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise UserError(f"{source}: {name!r} must be {kinds}, got {json.dumps(value)}; fix the value")


def read_config_file(path: str | Path) -> dict:
    """The settings of an inference config file, checked: a JSON object with known keys of the right types."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"inference config {path} not found; pass an existing JSON file "
                        f"(see shakespeare/models/)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"inference config {path} is not valid JSON ({err}); fix the file") from err
    if not isinstance(data, dict):
        raise UserError(f"inference config {path} must be a JSON object of settings; fix the file")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise UserError(f"inference config {path} has unknown key(s) {', '.join(map(repr, unknown))}; "
                        f"allowed keys: {', '.join(sorted(FIELDS))}")
    for name, value in data.items():
        _check_type(name, value, f"inference config {path}")
    if isinstance(data.get("model"), str):  # relative to the config file, not to the working directory
        data["model"] = str(path.parent / Path(data["model"]).expanduser())
    if isinstance(data.get("temperature"), int):
        data["temperature"] = float(data["temperature"])
    return data


def validate(cfg: InferenceConfig) -> None:
    """Raise UserError naming the first impossible setting (before anything is loaded)."""
    if cfg.strategy not in STRATEGIES:
        raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {cfg.strategy!r}")
    if not math.isfinite(cfg.temperature) or cfg.temperature < 0:
        raise UserError(f"--temperature must be >= 0 (0 = greedy), got {cfg.temperature}")
    if cfg.top_k < 1:
        raise UserError(f"--top_k must be >= 1, got {cfg.top_k}")
    if not (0 < cfg.top_p <= 1):  # also rejects nan
        raise UserError(f"--top_p must be in (0, 1], got {cfg.top_p}")
    if cfg.beam_width < 1:
        raise UserError(f"--beam_width must be >= 1, got {cfg.beam_width}")
    if cfg.num_tokens < 0:
        raise UserError(f"--num_tokens must be >= 0, got {cfg.num_tokens}")
    if cfg.num_samples < 1:
        raise UserError(f"--num_samples must be >= 1, got {cfg.num_samples}")
    if cfg.strategy == "beam" and cfg.num_samples > cfg.beam_width:
        raise UserError(f"--num_samples ({cfg.num_samples}) must not exceed --beam_width ({cfg.beam_width}) "
                        f"with beam search: it prints the best beams; raise --beam_width")
    if not math.isfinite(cfg.length_penalty):
        raise UserError(f"--length_penalty must be a finite number, got {cfg.length_penalty}")
    if cfg.stop == "":
        raise UserError("--stop must not be empty; omit it to always generate --num_tokens characters")
    if cfg.device not in DEVICES:
        raise UserError(f"--device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if cfg.seed is not None and not 0 <= cfg.seed < 2**64:
        raise UserError(f"--seed must be in [0, 2**64), got {cfg.seed}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line and exit 2, like every other user error
        raise UserError(f"{message}; see --help")


def shipped_configs_text() -> str:
    """One line per shipped inference config, for --help."""
    lines = []
    for path in sorted(MODELS_DIR.glob("*.json")):
        try:
            items = read_config_file(path)
        except UserError:
            continue
        shown = ", ".join(f"{k}={v}" for k, v in items.items())
        lines.append(f"  {path.name:12s}{shown}")
    if not lines:
        return ""
    return (f"inference configs in {MODELS_DIR} (without --config, <strategy>.json is used; "
            f"default strategy {DEFAULT_STRATEGY}):\n" + "\n".join(lines))


def build_parser() -> argparse.ArgumentParser:
    d = InferenceConfig()

    def dflt(name: str) -> str:
        return f"(default: the inference config's, else {getattr(d, name)})"

    p = _Parser(description=__doc__, epilog=shipped_configs_text(),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    # Every setting defaults to None, so the flags actually given can be told apart (they override the file).
    p.add_argument("--model", metavar="PATH",
                   help="checkpoint to generate from (default: the inference config's, else the shipped "
                        "shakespeare/models/lite.pt)")
    p.add_argument("--config", metavar="FILE",
                   help="inference config JSON file (default: shakespeare/models/<strategy>.json, if there)")
    p.add_argument("--prompt", metavar="TEXT",
                   help="text to continue; every character must be in the model's vocabulary (default: none: "
                        "start from a newline, not printed); in bash, $'ROMEO:\\n' puts a newline in it")
    p.add_argument("--num_tokens", type=int, metavar="N",
                   help=f"characters to generate per text, N >= 0 {dflt('num_tokens')}")
    p.add_argument("--strategy", choices=STRATEGIES,
                   help=f"decoding strategy, see above (default: {d.strategy})")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="T >= 0: logits are divided by T before the softmax (T < 1 sharper, T > 1 flatter); "
                        "T = 0 is greedy for sample/top_k/top_p; beam search scores log softmax(logits / T), "
                        f"with T = 0 scored as 1; ignored by greedy {dflt('temperature')}")
    p.add_argument("--top_k", type=int, metavar="K",
                   help="strategy top_k: sample among the K >= 1 most likely characters after temperature "
                        f"(K >= the vocabulary size keeps them all) {dflt('top_k')}")
    p.add_argument("--top_p", type=float, metavar="P",
                   help="strategy top_p: sample among the smallest set of most likely characters whose "
                        f"probability (after temperature) sums to at least P, P in (0, 1]; 1 keeps all "
                        f"{dflt('top_p')}")
    p.add_argument("--beam_width", type=int, metavar="W",
                   help=f"strategy beam: beams kept at every step, W >= 1 {dflt('beam_width')}")
    p.add_argument("--length_penalty", type=float, metavar="A",
                   help="strategy beam: rank beams by logprob / L**A, L = generated characters (A = 0: sum "
                        "of log-probs, A = 1: mean); matters only when --stop ends beams early "
                        f"{dflt('length_penalty')}")
    p.add_argument("--num_samples", type=int, metavar="N",
                   help="texts to generate, one after the other (beam: print the N best beams, N <= W) "
                        f"{dflt('num_samples')}")
    p.add_argument("--seed", type=int, metavar="N",
                   help="random seed: the same seed, settings, model and device give the same text "
                        "(default: the inference config's, else a fresh random seed each run)")
    p.add_argument("--stop", metavar="TEXT",
                   help="end a text as soon as its continuation ends with TEXT (beam: that beam is finished) "
                        "(default: the inference config's, else none: always generate N characters)")
    p.add_argument("--device", choices=DEVICES,
                   help=f"where to run the model; auto = cuda, else mps, else cpu {dflt('device')}")
    p.add_argument("--no_kv_cache", action="store_true",
                   help="recompute the whole window at every step instead of using the KV cache (the same "
                        "text, much slower; for checking and benchmarking)")
    return p


def resolve_config(args: argparse.Namespace) -> InferenceConfig:
    """Defaults < inference config file < explicit flags."""
    given = {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}
    if args.config is not None:
        path = Path(args.config)
    else:
        path = config_path_for(given.get("strategy", DEFAULT_STRATEGY))
        if given.get("strategy", DEFAULT_STRATEGY) not in STRATEGIES or not path.is_file():
            path = None
    from_file = read_config_file(path) if path is not None else {}
    cfg = dataclasses.replace(InferenceConfig(), **{**from_file, **given})
    validate(cfg)
    return cfg


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def generate(cfg: InferenceConfig, use_cache: bool = True, notes: list[str] | None = None) -> None:
    """Load the model named by cfg and write the generated text(s) to stdout (notes to stderr first)."""
    device = resolve_device(cfg.device)
    model_path = cfg.model if cfg.model is not None else DEFAULT_MODEL
    if cfg.model is None and not DEFAULT_MODEL.is_file():
        raise UserError(f"the shipped model {DEFAULT_MODEL} is missing; train it with `make train` "
                        f"or pass --model PATH")
    model, tokenizer, _ = load_model(model_path, device)
    shown_prompt = cfg.prompt or ""
    prompt = cfg.prompt or SCRATCH_PROMPT
    if not cfg.prompt and SCRATCH_PROMPT not in tokenizer.stoi:
        raise UserError(f"{model_path}'s vocabulary has no newline to start from; pass --prompt")
    ids = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)  # (1, T)
    stop = tokenizer.encode(cfg.stop) if cfg.stop else None
    for note in notes or []:  # only once nothing can fail any more, so an error stays the only stderr line
        print(f"note: {note}", file=sys.stderr)

    if cfg.strategy == "beam":
        hyps = beam_search(model, ids, cfg.num_tokens, cfg.beam_width, cfg.temperature, cfg.length_penalty,
                           cfg.num_samples, stop, use_cache=use_cache)
        for i, h in enumerate(hyps):
            if cfg.num_samples > 1:
                score = f", score {h.score(cfg.length_penalty):.4f}" if cfg.length_penalty else ""
                _write(f"===== beam {i + 1}/{len(hyps)}: log-prob {h.logprob:.3f}{score} =====\n")
            text = shown_prompt + tokenizer.decode(h.tokens)
            _write(text if text.endswith("\n") else text + "\n")
        return

    temperature = 0.0 if cfg.strategy == "greedy" else cfg.temperature
    top_k = cfg.top_k if cfg.strategy == "top_k" else None
    top_p = cfg.top_p if cfg.strategy == "top_p" else None
    generator = torch.Generator(device=device)
    if cfg.seed is None:
        generator.seed()  # nondeterministic; PyTorch's default generator would repeat the same text every run
    else:
        generator.manual_seed(cfg.seed)
    for i in range(cfg.num_samples):
        if cfg.num_samples > 1:
            _write(f"===== sample {i + 1}/{cfg.num_samples} =====\n")
        _write(shown_prompt)
        last = shown_prompt
        out: list[int] = []
        tokens = generate_tokens(model, ids, cfg.num_tokens, temperature, top_k, top_p, generator, use_cache)
        for tok in tokens:
            out.append(int(tok))
            last = tokenizer.chars[out[-1]]
            _write(last)
            if stop is not None and out[-len(stop):] == stop:
                break
        if not last.endswith("\n"):
            _write("\n")


def main() -> int:
    args = build_parser().parse_args()
    cfg = resolve_config(args)
    given = {name for name in ("temperature", "top_k", "top_p", "beam_width", "length_penalty")
             if getattr(args, name) is not None}
    used = {"greedy": set(), "sample": {"temperature"}, "top_k": {"temperature", "top_k"},
            "top_p": {"temperature", "top_p"}, "beam": {"temperature", "beam_width", "length_penalty"}}
    ignored = sorted(given - used[cfg.strategy])
    notes = [f"--{name} has no effect with --strategy {cfg.strategy}" for name in ignored]
    try:
        generate(cfg, use_cache=not args.no_kv_cache, notes=notes)
    except BrokenPipeError:  # e.g. `generate.py | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    run_cli(main)
