"""Rule planning (tdw.workflow.plan): which rules a resolved config declares, what each
covers, and their names."""

from __future__ import annotations

import re

import pytest
from legacy_files import legacy_file

from tdw.config import ConfigError, Variant, resolve
from tdw.workflow import plan


def workbench(tmp_path, legacy=(), **config):
    """A resolved config; ``legacy``: (name, epoch) pairs, each with a file of its own."""
    entries = []
    for name, epoch in legacy:
        path = legacy_file(tmp_path / f"{name}.pth", n_train=epoch + 1, n_test=epoch + 1, p=13)
        entries.append({"name": name, "path": str(path), "p": 13, "epoch": epoch})
    base = {"family": "modadd", "checkpoints": [0, 5, 10]}
    if entries:
        base["legacy"] = entries
    return resolve(base | config, "test.yaml", "families")


def test_trained_variants_share_one_class_and_legacy_variants_have_their_own(tmp_path):
    wb = workbench(
        tmp_path, legacy=[("legacy_no_wd", 4999), ("legacy.low-precision", 4999)], sweep={"p": [13, 17], "seed": [0, 1]}
    )
    classes = plan.epoch_classes(wb)
    assert [(c.name, c.legacy, c.epochs, c.variants) for c in classes] == [
        ("trained", False, (0, 5, 10), ("p13_seed0", "p13_seed1", "p17_seed0", "p17_seed1")),
        ("legacy_legacy_no_wd", True, (4999,), ("legacy_no_wd",)),
        # two legacy variants with the same epoch still get a rule each, named by the variant
        ("legacy_legacy_low_precision", True, (4999,), ("legacy.low-precision",)),
    ]
    assert all(re.fullmatch(r"[A-Za-z_]\w*", f"forward_cache_{c.name}") for c in classes)


def test_legacy_only_and_trained_only(tmp_path):
    legacy = workbench(tmp_path, legacy=[("old", 100)])
    assert [c.name for c in plan.epoch_classes(legacy)] == ["legacy_old"]
    assert plan.train_alone(legacy) == [] and plan.seed_batches(legacy) == []
    trained = workbench(tmp_path, sweep={"p": [13], "seed": [0]})
    assert [(c.name, c.variants) for c in plan.epoch_classes(trained)] == [("trained", ("p13_seed0",))]


def test_legacy_names_that_give_one_rule_name_are_refused(tmp_path):
    wb = workbench(tmp_path, legacy=[("a.b", 1), ("a-b", 2)])
    with pytest.raises(ConfigError, match=r"test.yaml: legacy variants 'a.b' and 'a-b' give one rule name 'legacy_a_b'"):
        plan.epoch_classes(wb)


def test_trained_variants_with_two_schedules_get_a_class_each(tmp_path):
    wb = workbench(tmp_path, sweep={"p": [13], "seed": [0]})
    odd = Variant("p17_seed0", 17, 0, 0.3, (0, 7))
    classes = plan.epoch_classes(type(wb)(**{**wb.__dict__, "variants": (*wb.variants, odd)}))
    assert [(c.name, c.epochs, c.variants) for c in classes] == [
        ("trained", (0, 5, 10), ("p13_seed0",)),
        ("trained_2", (0, 7), ("p17_seed0",)),
    ]
    assert [plan.train_rule(c) for c in classes] == ["train", "train_2"]


def test_seed_batches_by_prime(tmp_path):
    wb = workbench(tmp_path, legacy=[("old", 100)], sweep={"p": [13, 17, 19], "seed": [0, 2]}, batch_seeds=True)
    batches = plan.seed_batches(wb)
    assert [(b.name, b.p, [v.name for v in b.variants]) for b in batches] == [
        ("train_batch_p13_seeds0_2", 13, ["p13_seed0", "p13_seed2"]),
        ("train_batch_p17_seeds0_2", 17, ["p17_seed0", "p17_seed2"]),
        ("train_batch_p19_seeds0_2", 19, ["p19_seed0", "p19_seed2"]),
    ]
    assert plan.train_alone(wb) == []


def test_a_prime_with_one_seed_trains_alone(tmp_path):
    wb = workbench(tmp_path, sweep={"p": [13], "seed": [0, 1, 3]}, batch_seeds=True)
    assert [b.name for b in plan.seed_batches(wb)] == ["train_batch_p13_seeds0_1_3"]
    one = workbench(tmp_path, sweep={"p": [13], "seed": [4]}, batch_seeds=True)
    assert plan.seed_batches(one) == [] and plan.train_alone(one) == ["p13_seed4"]


def test_without_batch_seeds_every_trained_variant_trains_alone(tmp_path):
    wb = workbench(tmp_path, legacy=[("old", 100)], sweep={"p": [13, 17], "seed": [0, 1]})
    assert plan.seed_batches(wb) == []
    assert plan.train_alone(wb) == ["p13_seed0", "p13_seed1", "p17_seed0", "p17_seed1"]


def test_alternatives_match_exactly_the_names():
    pattern = plan.alternatives(["p13_seed1", "legacy.x"])
    assert re.fullmatch(pattern, "legacy.x") and re.fullmatch(pattern, "p13_seed1")
    assert not re.fullmatch(pattern, "legacyXx") and not re.fullmatch(pattern, "p13_seed10")
    assert not re.fullmatch(plan.alternatives([]), "")  # no names: matches nothing
