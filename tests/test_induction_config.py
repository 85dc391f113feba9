"""The induction family resolves (vocabulary sizes need not be prime), and bad input is
stopped while the config resolves, naming the file, the key and the value: a prompt file
with characters outside the vocabulary or longer than n_ctx, a probe kind the task cannot
make, an analyzer offered for a task it does not support."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tdw.config import ConfigError, load, resolve
from tdw.tasks import sequence as task

CONFIG = {"family": "induction", "sweep": {"p": [30], "seed": [0]}, "checkpoints": [0, 10]}


@pytest.fixture
def families(root: Path, tmp_path: Path) -> Path:
    """A copy of the induction and modadd families to edit."""
    for name in ("induction", "modadd"):
        shutil.copytree(root / "families" / name, tmp_path / name)
    return tmp_path


def _edit(families: Path, name: str, change) -> Path:
    path = families / name / "family.json"
    spec = json.loads(path.read_text())
    change(spec)
    path.write_text(json.dumps(spec))
    return path


def test_default_and_tiny_configs_resolve(root):
    for config in ("config/induction.yaml", "tests/configs/tiny_induction.yaml"):
        wb = load(root / config, str(root / "families"))
        assert wb.family.operation == "induction" and wb.probe == "repeated"
        assert set(wb.analyzers) == {"induction", "induction_loss", "transitions", "weight_norms", "ablations", "dimensionality"}
    wb = resolve(CONFIG, "c.yaml", str(root / "families"))  # 30 is no prime: a vocabulary size needs none
    assert [v.name for v in wb.variants] == ["v30_seed0"]
    with pytest.raises(ConfigError, match=r"c.yaml: key 'batch_seeds': the minibatch recipe of family 'induction'"):
        resolve(CONFIG | {"batch_seeds": True}, "c.yaml", str(root / "families"))
    with pytest.raises(ConfigError, match=r"c.yaml: key 'sweep.p': 2 is not a vocabulary size"):
        resolve(CONFIG | {"sweep": {"p": [2], "seed": [0]}}, "c.yaml", str(root / "families"))


def test_prompt_file_tokens_and_padding(root):
    family = root / "families" / "induction"
    spec = json.loads((family / "family.json").read_text())
    tokens, lengths = task.probe_tokens(30, 32, spec["probes"]["prompts"], spec, family)
    lines = [line for line in (family / "prompts.txt").read_text().splitlines() if line]
    alphabet = spec["tokenizer"]["alphabet"]
    assert list(lengths) == [len(line) for line in lines]
    for row, line, n in zip(tokens, lines, lengths, strict=True):
        assert "".join(alphabet[t] for t in row[:n]) == line
        assert np.all(row[n:] == 30)  # padded with token p


def test_prompt_file_outside_the_vocabulary_or_too_long_is_refused(root, families):
    prompts = families / "induction" / "prompts.txt"
    prompts.write_text("abcabc\nhello world\n")
    source = str(families / "induction" / "family.json")
    # ' ' and 'w' are tokens 26 and 22 of the alphabet: outside a vocabulary of 20
    with pytest.raises(
        ConfigError, match=r"key 'probes.prompts.file' \('prompts.txt', vocabulary p = 20\).*line 2: characters \[' ', 'w'\]"
    ) as err:
        resolve(CONFIG | {"sweep": {"p": [20], "seed": [0]}}, "c.yaml", str(families))
    assert source in str(err.value) and str(prompts) in str(err.value)
    prompts.write_text("abc abc\nHello\n")  # not in the alphabet at all
    with pytest.raises(ConfigError, match=r"line 2: characters \['H'\] are outside the vocabulary"):
        resolve(CONFIG, "c.yaml", str(families))
    prompts.write_text("ab" * 17 + "\n")
    with pytest.raises(ConfigError, match=r"line 1: 34 tokens, longer than n_ctx = 32"):
        resolve(CONFIG, "c.yaml", str(families))
    prompts.write_bytes(b"abc abc\n caf\xe9\n")
    with pytest.raises(ConfigError, match=r"prompt file .*prompts.txt is not UTF-8 text \(byte 12"):
        resolve(CONFIG, "c.yaml", str(families))
    prompts.unlink()
    with pytest.raises(ConfigError, match=r"prompt file .*prompts.txt not found"):
        resolve(CONFIG, "c.yaml", str(families))
    prompts.mkdir()
    with pytest.raises(ConfigError, match=r"prompt file .*prompts.txt is a folder"):
        resolve(CONFIG, "c.yaml", str(families))


def test_probe_kinds_the_task_cannot_make_are_refused(families):
    path = _edit(families, "induction", lambda s: s["probes"].update({"full": {"kind": "grid"}}))
    with pytest.raises(ConfigError, match=rf"{path}: key 'probes.full.kind': 'grid' is not a probe the sequence task can make"):
        resolve(CONFIG, "c.yaml", str(families))
    path = _edit(families, "modadd", lambda s: s["probes"].update({"seq": {"kind": "repeated", "size": 4}}))
    with pytest.raises(ConfigError, match=rf"{path}: key 'probes.seq.kind': 'repeated': task 'add' makes probes of kind grid"):
        resolve({"family": "modadd", "sweep": {"p": [13], "seed": [0]}}, "c.yaml", str(families))


def test_a_recipe_the_task_does_not_train_with_is_refused(families):
    # a grid task trains full batch or with its own minibatch recipe, which has no sequence keys
    path = _edit(families, "modadd", lambda s: s.update({"training": {"recipe": "minibatch", "eval_size": 8}}))
    with pytest.raises(
        ConfigError,
        match=rf"{path}: key 'training': the grid tasks' minibatch recipe takes \['batch_size'\]; got \['eval_size'\]",
    ):
        resolve({"family": "modadd", "sweep": {"p": [13], "seed": [0]}}, "c.yaml", str(families))
    path = _edit(families, "induction", lambda s: s.update({"training": {"recipe": "full_batch"}}))
    with pytest.raises(
        ConfigError, match=rf"{path}: key 'training.recipe': 'full_batch'; the 'induction' task trains with 'minibatch'"
    ):
        resolve(CONFIG, "c.yaml", str(families))


def test_analyzer_for_another_task_is_refused(families):
    path = _edit(families, "modadd", lambda s: s["analyzers"].update({"induction": {}}))
    with pytest.raises(
        ConfigError, match=rf"{path}: key 'analyzers.induction': the analyzer supports tasks \['induction'\], not 'add'"
    ):
        resolve({"family": "modadd", "sweep": {"p": [13], "seed": [0]}}, "c.yaml", str(families))
    path = _edit(families, "induction", lambda s: s["analyzers"].update({"embedding_frequencies": {}}))
    with pytest.raises(ConfigError, match=rf"{path}: key 'analyzers.embedding_frequencies': .* not 'induction'"):
        resolve(CONFIG, "c.yaml", str(families))
    path = _edit(families, "induction", lambda s: s["training"].update({"segment_min": 20}))
    with pytest.raises(ConfigError, match=rf"{path}: key 'training.segment_min': 20 does not fit n_ctx = 32"):
        resolve(CONFIG, "c.yaml", str(families))
