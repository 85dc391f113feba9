# Config validation (before any job) and the get_* helpers every rule uses.
import os
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# Jobs (also under --sdm conda or on a cluster) import the package from this checkout.
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))

from tdw import config as tdw_config
from tdw.io.checkpoint import checkpoint_name
from tdw.workflow.codehash import code_hash

CONFIG_SOURCE = ", ".join(str(f) for f in workflow.configfiles) or "config"
WB = tdw_config.resolve(config, CONFIG_SOURCE, families_dir=str(Path(workflow.basedir) / "families"))
# Storage policy: false makes caches temporary (docs/STORAGE.md).
KEEP_CACHES = WB.keep_caches
FAMILY = WB.family
VDIR = f"{WB.results}/{FAMILY.name}/{{variant}}"
LOGS = f"logs/{FAMILY.name}"
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
ENV = "../envs/workbench.yaml"


def _alternatives(names):
    return "|".join(sorted(names)) or "(?!)"


def epoch_classes():
    """Variants grouped by their checkpoint epochs: every rule whose outputs list one file
    per checkpoint is declared once per group (trained variants share one schedule)."""
    groups = {}
    for v in WB.variants:
        groups.setdefault((v.is_legacy, v.epochs), []).append(v.name)
    return [(i, legacy, epochs, names) for i, ((legacy, epochs), names) in enumerate(sorted(groups.items()))]


TRAINED = [v for v in WB.variants if not v.is_legacy]
TRAIN_EPOCHS = TRAINED[0].epochs if TRAINED else ()


def seed_batches():
    """With ``batch_seeds``, trained variants of one prime (two or more seeds) train
    together in one job; every other trained variant trains alone."""
    if not WB.batch_seeds:
        return []
    by_p = {}
    for v in TRAINED:
        by_p.setdefault(v.p, []).append(v)
    return [group for _, group in sorted(by_p.items()) if len(group) > 1]


BATCHED = {v.name for group in seed_batches() for v in group}
TRAIN_NAMES = [v.name for v in TRAINED if v.name not in BATCHED]


wildcard_constraints:
    variant=_alternatives(v.name for v in WB.variants),
    analyzer=_alternatives(WB.analyzers),
    figure=_alternatives(WB.figures),
    probe="[A-Za-z0-9_-]+",


def checkpoint_file(variant, epoch):
    """A checkpoint's path; ``variant="{variant}"`` gives the wildcard pattern rules declare."""
    return f"{WB.results}/{FAMILY.name}/{variant}/checkpoints/{checkpoint_name(epoch)}"


def cache_outputs(paths):
    """Caches are kept, or (keep_caches: false) deleted once the jobs reading them finish."""
    return paths if KEEP_CACHES else temp(paths)


def cache_file(variant, probe, epoch):
    return f"{WB.results}/{FAMILY.name}/{variant}/cache/{probe}/epoch_{epoch:05d}.h5"


def get_checkpoints(wildcards):
    v = WB.variant(wildcards.variant)
    return [checkpoint_file(v.name, e) for e in v.epochs]


def get_code(script, *modules):
    """Content hash of a script and every workbench module it (and ``modules``) import."""
    return code_hash(str(SCRIPTS / script), *modules)


def get_train_params(wildcards):
    return train_params(WB.variant(wildcards.variant))


def train_params(v):
    params = {
        "family": FAMILY.name,
        "operation": FAMILY.operation,
        "model": FAMILY.model_config(v.p).to_dict(),
        "train": WB.train.to_dict(),
        "variant": {
            "name": v.name,
            "p": v.p,
            "seed": v.seed,
            "train_frac": v.train_frac,
            "epochs": list(v.epochs),
        },
    }
    if v.is_legacy:
        params["variant"]["legacy_test_every"] = v.legacy_test_every
    return params


def batch_outputs(group, name):
    """Per-variant output files of a seed batch (``name``: checkpoints or a file name)."""
    base = f"{WB.results}/{FAMILY.name}"
    if name == "checkpoints":
        return [checkpoint_file(v.name, e) for v in group for e in v.epochs]
    return [f"{base}/{v.name}/{name}" for v in group]


def get_legacy_path(wildcards):
    return WB.variant(wildcards.variant).legacy_path


def get_cache_params(wildcards):
    v = WB.variant(wildcards.variant)
    return {
        "variant": v.name,
        "p": v.p,
        "seed": v.seed,
        "train_frac": v.train_frac,
        "cache": FAMILY.spec["cache"],
    }


def get_probe_spec(wildcards):
    if wildcards.probe not in FAMILY.spec["probes"]:
        raise ValueError(f"unknown probe {wildcards.probe!r}; family {FAMILY.name} offers {sorted(FAMILY.spec['probes'])}")
    return FAMILY.spec["probes"][wildcards.probe]


def get_analyzer_inputs(wildcards):
    from tdw import analyzers

    v = WB.variant(wildcards.variant)
    inputs = {"checkpoints": get_checkpoints(wildcards)}
    if analyzers.get(wildcards.analyzer).reads:
        inputs["caches"] = [cache_file(v.name, wildcards.probe, e) for e in v.epochs]
    if analyzers.get(wildcards.analyzer).needs_history:
        inputs["history"] = f"{WB.results}/{FAMILY.name}/{v.name}/history.h5"
    return inputs


def get_analyzer_params(wildcards):
    return WB.analyzer_params(wildcards.analyzer)


def get_analyzer_code(wildcards):
    from tdw.analyzers import REGISTRY

    return get_code("analyze.py", REGISTRY[wildcards.analyzer])


def artifact_file(variant, analyzer, probe=None):
    return f"{WB.results}/{FAMILY.name}/{variant}/artifacts/{probe or WB.probe}/{analyzer}.h5"


def view_inputs(variant, figure):
    """Files a figure (or report view) is drawn from."""
    source = WB.figures[figure]["source"]
    base = f"{WB.results}/{FAMILY.name}/{variant}"
    if source == "history":
        return {"history": f"{base}/history.h5", "metadata": f"{base}/metadata.json"}
    return {"artifact": artifact_file(variant, source)}


def get_figure_inputs(wildcards):
    return view_inputs(wildcards.variant, wildcards.figure)


def get_figure_params(wildcards):
    return WB.figures[wildcards.figure]


def get_figure_code(wildcards):
    from tdw.figures import REGISTRY

    return get_code("render.py", REGISTRY[wildcards.figure])


def report_file(report):
    return str(FAMILY.root / "reports" / f"{report}.json")


def report_spec(report):
    """A report configuration, checked against the family and this config (unknown view,
    missing artifact, unknown parameter: an error before any job runs)."""
    from tdw.pages.report_spec import load_report_spec

    return load_report_spec(report_file(report), WB.figures, FAMILY.spec["figures"])


def report_views(report):
    return report_spec(report)["views"]


def get_report_inputs(wildcards):
    inputs = {
        "spec": report_file(wildcards.report),
        "metadata": f"{WB.results}/{FAMILY.name}/{wildcards.variant}/metadata.json",
    }
    for view in report_views(wildcards.report):
        for key, path in view_inputs(wildcards.variant, view["figure"]).items():
            inputs[f"{view['figure']}.{key}"] = path
    return inputs


def get_report_spec(wildcards):
    return report_spec(wildcards.report)


def get_report_code(wildcards):
    from tdw.figures import REGISTRY

    return get_code("report.py", "tdw.pages.report_spec", *(REGISTRY[v["figure"]] for v in report_views(wildcards.report)))


def get_compare_inputs(wildcards):
    """Per variant: history, metadata, and the embedding_frequencies / transitions
    artifacts when this config produces them."""
    inputs = {"spec": report_file(wildcards.report)}
    for v in WB.variants:
        base = f"{WB.results}/{FAMILY.name}/{v.name}"
        inputs[f"{v.name}.history"] = f"{base}/history.h5"
        inputs[f"{v.name}.metadata"] = f"{base}/metadata.json"
        for analyzer, key in (("embedding_frequencies", "embedding"), ("transitions", "transitions")):
            if analyzer in WB.analyzers:
                inputs[f"{v.name}.{key}"] = artifact_file(v.name, analyzer)
    return inputs


def get_compare_spec(wildcards):
    return report_spec(wildcards.report)


def get_compare_variants(wildcards):
    return [v.name for v in WB.variants]


def get_compare_code(wildcards):
    return get_code("compare.py")


# The reports this config builds are checked now, before the DAG is built.
for _report in WB.reports:
    report_spec(_report)


def get_all_targets():
    targets = []
    for v in WB.variants:
        base = f"{WB.results}/{FAMILY.name}/{v.name}"
        targets += [f"{base}/figures/{fig}.{ext}" for fig in WB.figures for ext in ("html", "png", "svg")]
        targets += [f"{base}/reports/{r}.html" for r in WB.reports]
        if KEEP_CACHES:
            targets += [cache_file(v.name, WB.probe, e) for e in v.epochs]
        targets += [artifact_file(v.name, a) for a in WB.analyzers]
    # One comparison page per report configuration: a single cheap job over all variants.
    targets += [f"{WB.results}/{FAMILY.name}/compare/{r}.html" for r in WB.reports]
    return targets
