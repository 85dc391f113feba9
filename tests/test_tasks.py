"""The modular tasks (add, sub, mul, div, sq): inputs, labels, splits and probes against brute
force; the discrete-log group; a hand-built multiplicative model whose key frequencies the
Fourier analyzers find in log space and not in token space; and the families' task checks."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from handmade import fourier_weights, write_caches

from tdw.analyzers.base import CheckpointView, GroupView
from tdw.analyzers.fourier import block_fve, centred_fourier_2d, frequency_norms, sum_directions
from tdw.analyzers.runner import run_analyzer
from tdw.config import ConfigError, load, load_family, resolve
from tdw.io.checkpoint import checkpoint_name, save_checkpoint
from tdw.io.h5 import load_artifact
from tdw.tasks import modular
from tdw.tasks.modular import Task, primitive_root

BRUTE = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: (a * b) % p,
    "div": lambda a, b, p: next(c for c in range(p) if (c * b) % p == a),
    "sq": lambda a, b, p: (a * a + b * b) % p,
}


@pytest.mark.parametrize("operation", sorted(BRUTE))
def test_labels_pairs_and_split_against_brute_force(operation):
    p = 7
    task = Task(operation, p)
    pairs = [(a, b) for a in range(p) for b in range(p) if operation != "div" or b != 0]
    assert task.pairs.tolist() == [a * p + b for a, b in pairs]
    assert task.labels(task.pairs).tolist() == [BRUTE[operation](a, b, p) for a, b in pairs]
    # the split shuffles the task's pair list as the original code shuffled (a, b) tuples
    shuffled = list(pairs)
    random.Random(3).shuffle(shuffled)
    cut = int(0.4 * len(pairs))
    train, test = task.split(0.4, 3)
    assert train.tolist() == [a * p + b for a, b in shuffled[:cut]]
    assert test.tolist() == [a * p + b for a, b in shuffled[cut:]]
    assert task.probe_indices({"kind": "grid"}, 0.4, 3).tolist() == task.pairs.tolist()
    sample = task.probe_indices({"kind": "random", "size": 20, "seed": 1}, 0.4, 3)
    assert len(set(sample.tolist())) == 20 and set(sample.tolist()) <= set(task.pairs.tolist())


def test_add_and_sub_keep_their_split_probes_and_labels():
    """The functions' old signatures give what they gave before division existed."""
    p = 13
    order = list(range(p * p))
    random.Random(5).shuffle(order)
    train, test = modular.split(p, 0.3, 5)
    assert train.tolist() == order[: int(0.3 * p * p)] and test.tolist() == order[int(0.3 * p * p) :]
    rng = np.random.default_rng(0)
    assert modular.probe_indices(p, {"kind": "random", "size": 50, "seed": 0}, 0.3, 5).tolist() == sorted(
        rng.choice(p * p, size=50, replace=False).tolist()
    )
    assert modular.probe_indices(p, {"kind": "grid"}, 0.3, 5).tolist() == list(range(p * p))
    assert Task("add", p).to_config() == {"operation": "add", "p": p}


def test_division_by_zero_is_refused():
    with pytest.raises(ValueError, match="b = 0"):
        modular.labels(5, np.array([6, 5]), "div")  # (1, 1) and (1, 0)


@pytest.mark.parametrize("p", [3, 5, 7, 11, 13, 23, 31, 113])
def test_discrete_log_turns_mul_into_add_and_div_into_sub(p):
    g = primitive_root(p)
    assert sorted(pow(g, i, p) for i in range(p - 1)) == list(range(1, p))  # g generates 1..p-1
    mul, div = Task("mul", p, "discrete_log").group, Task("div", p, "discrete_log").group
    n = p - 1
    assert (mul.n, mul.operation, div.operation) == (n, "add", "sub")
    i, j = np.divmod(np.arange(n * n), n)
    a, b = mul.tokens[i], mul.tokens[j]
    assert np.array_equal(mul.tokens[(i + j) % n], a * b % p)
    assert np.array_equal(div.tokens[(i - j) % n], modular.labels(p, a * p + b, "div"))
    assert mul.element[0] == -1 and np.array_equal(mul.element[mul.tokens], np.arange(n))
    assert Task("mul", p).group is None and Task("sq", p).group is None
    assert Task("add", p).group.is_tokens


def test_fourier_helpers_on_an_even_group():
    """Z_n for even n (the group Z_{p-1}): the frequency n/2 is cos(pi x) alone."""
    n = 10
    x = np.arange(n)
    grid = np.cos(np.pi * (x[:, None] + x[None, :]))[..., None] + 0.0  # (-1)^(a+b): frequency 5 only
    fve = block_fve(centred_fourier_2d(grid.reshape(n * n, 1), n).astype(np.float64) ** 2)
    assert fve.shape == (5, 1) and fve[4, 0] == pytest.approx(1.0) and fve[:4].max() < 1e-10
    norms = np.zeros(n)
    norms[n - 1] = 2.0  # the last row is cos 5
    assert frequency_norms(norms).tolist() == [0, 0, 0, 0, 2.0]
    d = sum_directions(n, np.arange(n * n), np.array([2, 5]))
    assert np.allclose(np.linalg.norm(d, axis=0), [1, 1, 1, 0])


P, KEYS = 23, (3, 7)  # the group Z_22 and two key frequencies of it


def _checkpoint(path, weights, operation, relabel=None, p=P):
    from handmade import architecture

    arch = architecture(p, KEYS)
    task = {"operation": operation, "p": p} | ({"relabel": relabel} if relabel else {})
    config = {"task": task, "seed": 0, "architecture": arch, "train": {"train_frac": 0.5}}
    save_checkpoint(path, weights, {"epoch": 0, "config": config})
    return path


def multiplicative_weights() -> tuple[dict, dict]:
    """The hand-built Fourier model of a + b on Z_{p-1} (tests/handmade.py) with token g^i in
    the place of i: a model of a * b mod p for a, b != 0 whose embedding of a is
    cos / sin(2 pi k log_g(a) / (p - 1)). Token 0 embeds as zero and its logit is 0, below the answer's."""
    n = P - 1
    add = fourier_weights(n, KEYS)  # tokens 0..n-1, `=` at n
    tokens = Task("mul", P, "discrete_log").group.tokens
    mul = dict(add)
    mul["embed.W_E"] = np.zeros((P + 1, add["embed.W_E"].shape[1]))
    mul["embed.W_E"][tokens] = add["embed.W_E"][:n]
    mul["embed.W_E"][P] = add["embed.W_E"][n]
    mul["unembed.W_U"] = np.zeros((add["unembed.W_U"].shape[0], P + 1))
    mul["unembed.W_U"][:, tokens] = add["unembed.W_U"][:, :n]
    mul["unembed.W_U"][:, P] = add["unembed.W_U"][:, n]
    return mul, add


# progress measures of the seeded split: the two tasks split different pair lists
SPLIT = {"train_loss", "test_loss", "excluded_loss", "excluded_loss_all", "restricted_loss_train", "test_restricted_ratio"}
SPLIT |= {"n_train", "n_test"}
FOURIER = ("embedding_frequencies", "neuron_clusters", "progress_measures", "neuron_activations", "geometry", "attention")


def test_multiplicative_model_key_frequencies_in_log_space(tmp_path):
    """The Fourier analyzers on a * b mod 23 under the discrete-log relabelling find the model's
    key frequencies 3 and 7 of Z_22, and give exactly what they give on the same model written
    additively on Z_22; in token space the embedding has no such frequencies."""
    mul, add = multiplicative_weights()
    ckpt = _checkpoint(tmp_path / "mul" / checkpoint_name(0), mul, "mul", "discrete_log")
    ref = _checkpoint(tmp_path / "add" / checkpoint_name(0), add, "add", p=P - 1)
    caches = write_caches([ckpt], tmp_path / "mul_cache")
    ref_caches = write_caches([ref], tmp_path / "add_cache")
    # the model computes a * b mod p for a, b != 0 (brute force over the grid), except where
    # a = -b: there log a - log b = 11 and the hand-built neurons of the odd keys cancel
    view = CheckpointView(0, _model(ckpt), ckpt, caches[0], _config(ckpt))
    a, b = np.divmod(np.arange(P * P), P)
    rows = (a > 0) & (b > 0) & ((a + b) % P != 0)
    assert np.array_equal(view.activation("logits")[rows, :P].argmax(1), (a * b % P)[rows])
    for name in FOURIER:
        run_analyzer(name, {}, [ckpt], caches, tmp_path / f"{name}.h5", {})
        run_analyzer(name, {}, [ref], ref_caches, tmp_path / f"{name}_ref.h5", {})
        got, want = load_artifact(tmp_path / f"{name}.h5"), load_artifact(tmp_path / f"{name}_ref.h5")
        assert got["attrs"]["group"] == {"order": P - 1, "relabel": "discrete_log", "tokens": _tokens()}
        for key, value in want.items():
            if key in SPLIT:
                continue
            if key != "attrs" and value.dtype.kind == "f":
                np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5, err_msg=f"{name}.{key}")
            elif key != "attrs":
                assert np.array_equal(got[key], value), f"{name}.{key}"
    freq = load_artifact(tmp_path / "embedding_frequencies.h5")
    assert freq["key_frequencies"].tolist() == list(KEYS)
    clusters = load_artifact(tmp_path / "neuron_clusters.h5")
    assert clusters["final_clusters"].tolist() == list(KEYS)
    progress = load_artifact(tmp_path / "progress_measures.h5")
    assert progress["key_frequency"].tolist() == list(KEYS) and progress["logit_key_fraction"][0] > 0.75
    assert progress["n_train"][0] + progress["n_test"][0] == (P - 1) ** 2  # the split's group pairs
    # token space: the same embedding over Z_23 spreads over all frequencies (numpy's FFT, independently)
    spectrum = np.abs(np.fft.rfft(mul["embed.W_E"][:P], axis=0))[1:]  # [frequency 1..11, d_model]
    per_freq = np.linalg.norm(spectrum, axis=1)
    log_spectrum = np.linalg.norm(np.abs(np.fft.rfft(add["embed.W_E"][: P - 1], axis=0))[1:], axis=1)
    key_share = lambda s: float(np.sum(s[[k - 1 for k in KEYS]] ** 2) / np.sum(s**2))  # noqa: E731
    assert key_share(log_spectrum) > 0.999 and key_share(per_freq) < 0.4
    assert np.sum(per_freq >= 0.3 * per_freq.max()) > 2 * len(KEYS)  # no sparse set of key frequencies


def _config(ckpt):
    from tdw.io.checkpoint import read_metadata

    return read_metadata(ckpt)["config"]


def _model(ckpt):
    from tdw.models.architecture import ModelConfig

    return ModelConfig(**_config(ckpt)["architecture"])


def _tokens():
    return Task("mul", P, "discrete_log").group.tokens.tolist()


def test_group_view_of_division(tmp_path):
    """a / b mod p: the grid probe holds the p(p - 1) pairs with b != 0; the group view keeps those
    with a != 0 too, in group order, with labels i - j mod p - 1 and the seeded split's pairs."""
    p = 11
    weights = fourier_weights(p, KEYS)
    ckpt = _checkpoint(tmp_path / checkpoint_name(0), weights, "div", "discrete_log", p=p)
    task = Task("div", p, "discrete_log")
    index = task.probe_indices({"kind": "grid"}, 0.5, 0)
    assert len(index) == p * (p - 1)
    cache = write_caches([ckpt], tmp_path / "cache", index=index)[0]
    base = CheckpointView(0, _model(ckpt), ckpt, cache, _config(ckpt))
    view = GroupView(base, task.group)
    n, g = p - 1, task.group.tokens
    assert view.p == n and view.is_full_grid
    i, j = np.divmod(np.arange(n * n), n)
    assert np.array_equal(view.labels(), (i - j) % n)
    rows = np.searchsorted(index, g[i] * p + g[j])  # the cached row of each group pair
    post = base.activation("blocks.0.mlp.hook_post")
    assert np.array_equal(view.activation("blocks.0.mlp.hook_post"), post[rows])
    order = np.concatenate([g, [0, p]])
    assert np.array_equal(view.activation("logits"), base.activation("logits")[rows][:, order])
    assert np.array_equal(view.weights["embed.W_E"], base.weights["embed.W_E"][order])
    train, test = view.split()
    flat_train, _ = task.split(0.5, 0)
    kept = flat_train[flat_train // p != 0]  # a = 0 is no group element
    assert sorted(train.tolist()) == sorted((task.group.element[kept // p] * n + task.group.element[kept % p]).tolist())
    assert len(train) + len(test) == n * n


def _family_tree(tmp_path, root, name, spec):
    families = tmp_path / "families"
    if not families.exists():
        shutil.copytree(root / "families", families)
    (families / name / "reports").mkdir(parents=True, exist_ok=True)
    (families / name / "family.json").write_text(json.dumps(spec))
    shutil.copy(root / "families" / "modadd" / "reports" / "default.json", families / name / "reports")
    load_family.cache_clear()
    return str(families)


def test_families_offer_what_their_task_supports(root, tmp_path):
    fams = {n: load_family(n, str(root / "families")) for n in ("modmul", "moddiv", "modsq")}
    assert fams["modmul"].spec["task"] == {"operation": "mul", "relabel": "discrete_log"}
    assert fams["moddiv"].spec["task"] == {"operation": "div", "relabel": "discrete_log"}
    for name in ("modmul", "moddiv"):
        assert set(FOURIER) <= set(fams[name].spec["analyzers"]) and "ablations" not in fams[name].spec["analyzers"]
    # no group: no Fourier analyzer; by default the loss phases, dimensionality, weight norms and the
    # LLC, and on request the measures that hold for any task
    assert set(fams["modsq"].default_analyzers) == {"dimensionality", "transitions", "weight_norms", "llc"}
    assert set(fams["modsq"].spec["analyzers"]) - set(fams["modsq"].default_analyzers) == {
        "llc_calibration",
        "llc_restricted",
        "susceptibilities",
        "lmc",
        "cka",
        "essential_dynamics",
        "sharpness",
        "interventions",
    }
    for name in fams:
        wb = load(root / "tests" / "configs" / f"tiny_{name}.yaml", str(root / "families"))
        # every analyzer the family offers runs, except those it offers on request (the calibration)
        assert wb.family.name == name and list(wb.analyzers) == wb.family.default_analyzers
        assert "llc_calibration" in wb.family.spec["analyzers"] and "llc_calibration" not in wb.analyzers
    # a Fourier analyzer for mul without the relabelling: refused, naming the file, analyzer and task
    dirs = _family_tree(tmp_path, root, "plainmul", {"extends": "modmul", "name": "plainmul", "task": {"relabel": None}})
    with pytest.raises(
        ConfigError,
        match=r"modmul/family.json: key 'analyzers.embedding_frequencies': .*not 'mul'.*discrete_log.*of .*plainmul/family.json",
    ):
        load_family("plainmul", dirs)


def test_config_asking_for_an_analyzer_the_task_cannot_support(root):
    config = {"family": "modsq", "sweep": {"p": [13], "seed": [0]}, "checkpoints": [0, 5], "analyzers": ["neuron_clusters"]}
    with pytest.raises(
        ConfigError, match=r"cfg.yaml: key 'analyzers.neuron_clusters': family 'modsq' does not offer it: .*not 'sq'"
    ):
        resolve(config, "cfg.yaml", str(root / "families"))


def test_probe_kind_and_relabel_the_task_cannot_make(root, tmp_path):
    spec = {"extends": "modadd", "name": "seqmul", "task": {"operation": "mul"}, "probes": {"prompts": {"kind": "prompts"}}}
    spec |= {"analyzers": {"dimensionality": {"probes": ["full"]}}}
    dirs = _family_tree(tmp_path, root, "seqmul", spec)
    with pytest.raises(
        ConfigError, match=r"seqmul/family.json: key 'probes.prompts.kind': 'prompts': task 'mul' makes probes of kind grid"
    ):
        load_family("seqmul", dirs)
    dirs = _family_tree(tmp_path, root, "sqlog", {"extends": "modsq", "name": "sqlog", "task": {"relabel": "discrete_log"}})
    with pytest.raises(ConfigError, match=r"sqlog/family.json: key 'task.relabel': 'discrete_log' for operation 'sq'"):
        load_family("sqlog", dirs)
    ok = {"extends": "modadd", "name": "fine", "task": {"operation": "mul", "relabel": "discrete_log"}}
    assert (
        load_family(
            "fine",
            _family_tree(
                tmp_path,
                root,
                "fine",
                ok | {"analyzers": {"ablations": None, "clock_pizza": None}, "figures": {"ablations": None, "clock_pizza": None}},
            ),
        ).name
        == "fine"
    )
    load_family.cache_clear()


def test_the_checkpoint_task_decides_at_run_time(tmp_path):
    """run_analyzer refuses a Fourier analyzer on checkpoints of a * b without the relabelling."""
    mul, _ = multiplicative_weights()
    ckpt = _checkpoint(tmp_path / checkpoint_name(0), mul, "mul")
    with pytest.raises(ValueError, match=r"'embedding_frequencies': the analyzer supports tasks \['add', 'sub'\], not 'mul'"):
        run_analyzer("embedding_frequencies", {}, [ckpt], None, tmp_path / "out.h5", {})
    assert not (tmp_path / "out.h5").exists()
    run_analyzer("weight_norms", {}, [ckpt], None, tmp_path / "norms.h5", {})  # any task
    assert load_artifact(tmp_path / "norms.h5")["total_sum_sq"][0] == pytest.approx(sum(np.sum(w**2) for w in mul.values()))


@pytest.mark.slow
def test_division_family_runs_end_to_end(root, tmp_path):
    """The moddiv tiny config through the workflow: training on the p(p - 1) pairs with b != 0,
    the grid cache holds those rows, the Fourier analyzers work on Z_{p-1}, the report renders."""
    import h5py
    from workflow_runs import run_snakemake

    from tdw.layout import RESULTS, VariantLayout

    p = 13
    files = VariantLayout(RESULTS, "moddiv", f"p{p}_seed0_frac0.5")
    report, artifact = files.report("default"), files.artifact("full", "neuron_clusters")
    config = root / "tests" / "configs" / "tiny_moddiv.yaml"
    proc = run_snakemake(tmp_path, config, "--cores", "2", target_list=[str(report), str(artifact)], timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / report).stat().st_size > 0
    cfg = json.loads((tmp_path / files.config).read_text())
    assert cfg["task"] == {"operation": "div", "p": p, "relabel": "discrete_log"}
    with h5py.File(tmp_path / files.cache("full", 10)) as fh:
        assert fh["pair_index"][()].tolist() == Task("div", p).pairs.tolist()  # b != 0: p(p - 1) rows
    art = load_artifact(tmp_path / artifact)
    assert art["fve"].shape == (3, 512, (p - 1) // 2) and art["attrs"]["group"]["order"] == p - 1
