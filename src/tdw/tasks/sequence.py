"""The sequence task: random tokens in which a random segment repeats, next-token loss at
every position (in-context copying, the setting of induction heads, Olsson et al. 2022).

Tokens are 0..p-1 (``p``: the vocabulary size, the variant's domain parameter); token p is
the padding token of prompt files (the model's input vocabulary has p + 1 rows, its output
p). Every sequence of ``n_ctx`` tokens holds one segment of length L (``segment_min`` <= L
<= n_ctx // 2) that appears twice, the second copy after the first. Every batch is a pure
function of (stream, seed, step): training draws fresh minibatches per step, and a resumed
run draws the same ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tdw.errors import ConfigError

OPERATION = "induction"
PROBE_KINDS = ("repeated", "prompts")
RECIPE = "minibatch"
RECIPE_DEFAULTS = {"batch_size": 32, "eval_size": 256, "segment_min": 2}
# Streams of the generator: a training batch, the fixed evaluation batch, a probe.
TRAIN, EVAL, PROBE = 0, 1, 2


def recipe_values(recipe: dict) -> dict:
    """A family's minibatch recipe with every value present (``RECIPE_DEFAULTS`` for those it leaves out)."""
    return {"recipe": RECIPE} | RECIPE_DEFAULTS | {k: v for k, v in recipe.items() if k != "recipe"}


def batch(p: int, n_ctx: int, size: int, seed: int, step: int, segment_min: int = 2, stream: int = TRAIN) -> np.ndarray:
    """``size`` sequences [size, n_ctx] (int64) of uniform random tokens 0..p-1, each with one
    repeated segment; drawn from ``numpy.random.default_rng([stream, seed, step])``."""
    longest = n_ctx // 2
    if not 1 <= segment_min <= longest:
        raise ValueError(f"segment_min {segment_min}: expected 1..{longest} (n_ctx // 2) for n_ctx = {n_ctx}")
    rng = np.random.default_rng([stream, seed, step])
    tokens = rng.integers(0, p, size=(size, n_ctx), dtype=np.int64)
    length = rng.integers(segment_min, longest + 1, size=size)
    u, v = rng.random(size), rng.random(size)
    first = (u * (n_ctx - 2 * length + 1)).astype(np.int64)  # 0 .. n_ctx - 2L
    second = first + length + (v * (n_ctx - first - 2 * length + 1)).astype(np.int64)  # first + L .. n_ctx - L
    for row in range(size):
        a, c, n = first[row], second[row], length[row]
        tokens[row, c : c + n] = tokens[row, a : a + n]
    return tokens


def probe_tokens(p: int, n_ctx: int, probe: dict, family_spec: dict, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Token rows [batch, n_ctx] (padded with token p) and their lengths [batch] for a probe of
    a sequence family: ``repeated`` (``size`` generated sequences under the probe's ``seed``)
    or ``prompts`` (the family's prompt ``file``, relative to the family folder ``root``,
    tokenized with the family's ``tokenizer``)."""
    kind = probe["kind"]
    if kind == "repeated":
        segment_min = int(family_spec.get("training", {}).get("segment_min", 2))
        rows = batch(p, n_ctx, int(probe["size"]), int(probe.get("seed", 0)), 0, segment_min, stream=PROBE)
        return rows, np.full(len(rows), n_ctx, dtype=np.int64)
    if kind == "prompts":
        return read_prompts(Path(root) / probe["file"], family_spec["tokenizer"]["alphabet"], p, n_ctx)
    raise ValueError(f"probe kind {kind!r}: a sequence task makes {list(PROBE_KINDS)}")


def probe_size(probe: dict, root: Path) -> int:
    """Rows of a probe of a sequence family (a prompt file's non-blank lines)."""
    if probe["kind"] == "prompts":
        return sum(1 for line in prompt_lines(Path(root) / probe["file"]) if line)
    return int(probe["size"])


def prompt_lines(path: Path, where: str = "") -> list[str]:
    """The lines of a prompt file; a file that is missing, a folder or not UTF-8 is a
    ``ConfigError`` naming it."""
    where = where or str(path)
    if not Path(path).exists():
        raise ConfigError(f"{where}: prompt file {path} not found")
    if Path(path).is_dir():
        raise ConfigError(f"{where}: prompt file {path} is a folder; expected a text file, one prompt a line")
    try:
        return Path(path).read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ConfigError(f"{where}: prompt file {path} is not UTF-8 text (byte {err.start}: {err.reason})") from None


def encode(text: str, alphabet: str) -> list[int]:
    """Character-level tokenizer: character ``alphabet[i]`` is token i."""
    index = {c: i for i, c in enumerate(alphabet)}
    return [index.get(c, -1) for c in text]


def read_prompts(path: Path, alphabet: str, p: int, n_ctx: int, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """A prompt file (one prompt a line, blank lines skipped), tokenized by ``encode``: rows
    padded with token p, and lengths. A character outside the vocabulary (not in the alphabet,
    or a token >= p) or a prompt longer than n_ctx is an error naming the file and line."""
    where = where or str(path)
    rows, lengths = [], []
    for number, line in enumerate(prompt_lines(path, where), 1):
        if not line:
            continue
        ids = encode(line, alphabet)
        bad = sorted({c for c, t in zip(line, ids, strict=True) if not 0 <= t < p})
        if bad:
            raise ConfigError(
                f"{where}: {path} line {number}: characters {bad} are outside the vocabulary "
                f"(the first {p} characters of the tokenizer's alphabet {alphabet[:p]!r})"
            )
        if len(ids) > n_ctx:
            raise ConfigError(f"{where}: {path} line {number}: {len(ids)} tokens, longer than n_ctx = {n_ctx}")
        if len(ids) < 2:
            raise ConfigError(f"{where}: {path} line {number}: {line!r} has fewer than 2 tokens (nothing to predict)")
        rows.append(ids + [p] * (n_ctx - len(ids)))
        lengths.append(len(ids))
    if not rows:
        raise ConfigError(f"{where}: prompt file {path} holds no prompt")
    return np.array(rows, dtype=np.int64), np.array(lengths, dtype=np.int64)


def check_vocabulary(p: int, source: str, key: str) -> None:
    """The vocabulary size of a sequence task (the variant's p): any integer >= 3."""
    if not isinstance(p, int) or p < 3:
        raise ConfigError(f"{source}: key {key!r}: {p!r} is not a vocabulary size; expected an integer >= 3")


def check_probes(spec: dict, source: str) -> None:
    """Each probe of a sequence family is a kind the task makes, with what that kind needs,
    and the recipe's shortest segment fits n_ctx; errors name the family file, the key and
    the value."""
    n_ctx, segment_min = spec["architecture"].get("n_ctx", 3), spec.get("training", {}).get("segment_min", 2)
    if not 1 <= segment_min <= n_ctx // 2:
        raise ConfigError(
            f"{source}: key 'training.segment_min': {segment_min} does not fit n_ctx = {n_ctx}; expected 1..{n_ctx // 2}"
        )
    for name, probe in spec["probes"].items():
        if probe["kind"] not in PROBE_KINDS:
            raise ConfigError(
                f"{source}: key 'probes.{name}.kind': {probe['kind']!r} is not a probe the sequence task can make; "
                f"expected one of {list(PROBE_KINDS)}"
            )
        need = {"repeated": "size", "prompts": "file"}[probe["kind"]]
        if need not in probe:
            raise ConfigError(f"{source}: key 'probes.{name}': a {probe['kind']!r} probe needs {need!r}")
        if probe["kind"] == "prompts" and "tokenizer" not in spec:
            raise ConfigError(f"{source}: key 'probes.{name}': a 'prompts' probe needs the family's 'tokenizer'")


def check_prompt_files(spec: dict, root: Path, vocabularies: list[int], source: str) -> None:
    """Every prompt file of a sequence family reads under each variant's vocabulary size and
    the family's n_ctx (``read_prompts``'s errors, naming the family file and key as well)."""
    for name, probe in spec["probes"].items():
        if probe["kind"] != "prompts":
            continue
        for p in sorted(set(vocabularies)):
            where = f"{source}: key 'probes.{name}.file' ({probe['file']!r}, vocabulary p = {p})"
            read_prompts(Path(root) / probe["file"], spec["tokenizer"]["alphabet"], p, spec["architecture"]["n_ctx"], where)
