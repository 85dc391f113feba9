# Config validation (before any job) and the get_* helpers every rule uses.
import os
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# Jobs (also under --sdm conda or on a cluster) import the package from this checkout.
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))

from tdw import config as tdw_config
from tdw.layout import FamilyLayout
from tdw.workflow import plan
from tdw.workflow.codehash import code_hash

# The embedded default config applies only when no --configfile is given: a config file means
# exactly what it says. `--config key=value` overrides apply on top of either.
if not workflow.config_settings.configfiles:
    workflow.configfile(str(Path(workflow.basedir) / "config" / "config.yaml"))

CONFIG_SOURCE = ", ".join(str(f) for f in workflow.configfiles) or "config"
WB = tdw_config.resolve(config, CONFIG_SOURCE, families_dir=str(Path(workflow.basedir) / "families"))
# Storage policy: false makes caches temporary (docs/STORAGE.md).
KEEP_CACHES = WB.keep_caches
FAMILY = WB.family
FAMILY_RESULTS = FamilyLayout(WB.results, FAMILY.name)
# The wildcard patterns rules declare: the layout of variant "{variant}".
V = FAMILY_RESULTS.variant("{variant}")
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
ENV = "../envs/workbench.yaml"
EPOCH_CLASSES = plan.epoch_classes(WB)
SEED_BATCHES = plan.seed_batches(WB)
TRAIN_NAMES = plan.train_alone(WB)
# One train rule per trained schedule; with no trained variant, `train` still exists (no job).
TRAIN_CLASSES = [c for c in EPOCH_CLASSES if not c.legacy] or [plan.EpochClass("trained", False, (), ())]


def variant_layout(variant):
    """The files of one variant (``"{variant}"``: the wildcard patterns)."""
    return FAMILY_RESULTS.variant(variant)


def log_file(rule, job, ext="log"):
    """A job's log (``ext="bench.tsv"``: its benchmark) under logs/<family>/<rule>/."""
    return FAMILY_RESULTS.log(rule, job, ext)


wildcard_constraints:
    variant=plan.alternatives(v.name for v in WB.variants),
    analyzer=plan.alternatives(WB.analyzers),
    figure=plan.alternatives(WB.figures),
    probe="[A-Za-z0-9_-]+",


def cache_outputs(paths):
    """Caches are kept, or (keep_caches: false) deleted once the jobs reading them finish."""
    return paths if KEEP_CACHES else temp(paths)


def stops_early(v):
    """Whether variant ``v`` trains with early stopping: its rules declare its checkpoint and
    cache folders, whose files are the epochs its metadata.json lists (tdw.train.early_stop)."""
    return not v.is_legacy and (v.train or WB.train).early_stop is not None


def checkpoint_outputs(epoch_class):
    """What a train rule of an epoch class declares: its checkpoint files, or (early stopping)
    the folder holding the checkpoints reached."""
    if epoch_class.early_stop:
        return directory(V.folder("checkpoints"))
    return [V.checkpoint(e) for e in epoch_class.epochs]


def checkpoints_of(epoch_class):
    """The checkpoints of an epoch class, by reference to the rule that writes them where one
    rule writes them all (a legacy import; train when no seeds train in batches)."""
    if epoch_class.early_stop:
        return V.folder("checkpoints")
    if epoch_class.legacy:
        return getattr(rules, f"import_{epoch_class.name}").output.checkpoints
    if not SEED_BATCHES:
        return getattr(rules, plan.train_rule(epoch_class)).output.checkpoints
    return [V.checkpoint(e) for e in epoch_class.epochs]


def get_checkpoints(wildcards):
    v = WB.variant(wildcards.variant)
    if stops_early(v):
        return variant_layout(v.name).folder("checkpoints")
    return [variant_layout(v.name).checkpoint(e) for e in v.epochs]


def get_code(script, *modules):
    """Content hash of a script and every workbench module it (and ``modules``) import."""
    return code_hash(str(SCRIPTS / script), *modules)


def get_train_params(wildcards):
    return train_params(WB.variant(wildcards.variant))


def train_params(v):
    """What a train job needs: the variant's own architecture and recipe."""
    params = {
        "family": FAMILY.name,
        "operation": FAMILY.operation,
        "model": (v.model or FAMILY.model_config(v.p)).to_dict(),
        "train": (v.train or WB.train).to_dict(),
        "variant": {
            "name": v.name,
            "p": v.p,
            "seed": v.seed,
            "train_frac": v.train_frac,
            "epochs": list(v.epochs),
        },
    }
    if v.data_seed != v.seed:  # absent: the split follows the seed
        params["variant"]["data_seed"] = v.data_seed
    if v.is_legacy:
        params["variant"]["legacy_test_every"] = v.legacy_test_every
    return params


def batch_outputs(batch, name):
    """Per-variant output files of a seed batch (``name``: checkpoints, history, metadata, config)."""
    if name == "checkpoints":
        files = (variant_layout(v.name) for v in batch.variants)
        return [
            directory(f.folder("checkpoints")) if stops_early(v) else f.checkpoint(e)
            for v, f in zip(batch.variants, files)
            for e in (v.epochs[:1] if stops_early(v) else v.epochs)
        ]
    return [getattr(variant_layout(v.name), name) for v in batch.variants]


def get_legacy_path(wildcards):
    return WB.variant(wildcards.variant).legacy_path


def get_cache_params(wildcards):
    v = WB.variant(wildcards.variant)
    params = {
        "variant": v.name,
        "p": v.p,
        "seed": v.seed,
        "train_frac": v.train_frac,
        "cache": FAMILY.spec["cache"],
    }
    # Only what differs from the seed and the family's architecture: params that change rerun the job.
    if v.data_seed != v.seed:
        params["data_seed"] = v.data_seed
    if v.model is not None and v.model != FAMILY.model_config(v.p):
        params["model"] = v.model.to_dict()
    return params


def get_probe_spec(wildcards):
    if wildcards.probe not in FAMILY.spec["probes"]:
        raise ValueError(f"unknown probe {wildcards.probe!r}; family {FAMILY.name} offers {sorted(FAMILY.spec['probes'])}")
    return FAMILY.spec["probes"][wildcards.probe]


def get_analyzer_inputs(wildcards):
    from tdw import analyzers

    v = WB.variant(wildcards.variant)
    inputs = {"checkpoints": get_checkpoints(wildcards)}
    if stops_early(v):  # the epochs reached are those metadata.json lists
        inputs["manifest"] = variant_layout(v.name).metadata
    if analyzers.get(wildcards.analyzer).reads and stops_early(v):
        inputs["caches"] = variant_layout(v.name).cache_dir(wildcards.probe)
    elif analyzers.get(wildcards.analyzer).reads:
        inputs["caches"] = [variant_layout(v.name).cache(wildcards.probe, e) for e in v.epochs]
    if analyzers.get(wildcards.analyzer).needs_history:
        inputs["history"] = variant_layout(v.name).history
    return inputs


def get_analyzer_params(wildcards):
    return WB.analyzer_params(wildcards.analyzer)


def get_analyzer_code(wildcards):
    from tdw.analyzers import REGISTRY

    return get_code("analyze.py", REGISTRY[wildcards.analyzer])


def view_inputs(variant, figure):
    """Files a figure (or report view) is drawn from."""
    from tdw.pages.report_spec import view_inputs

    return view_inputs(variant_layout(variant), WB.figures[figure]["source"], WB.probe)


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
    inputs = {"spec": report_file(wildcards.report), "metadata": variant_layout(wildcards.variant).metadata}
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
        files = variant_layout(v.name)
        inputs[f"{v.name}.history"] = files.history
        inputs[f"{v.name}.metadata"] = files.metadata
        for analyzer, key in (("embedding_frequencies", "embedding"), ("transitions", "transitions")):
            if analyzer in WB.analyzers:
                inputs[f"{v.name}.{key}"] = files.artifact(WB.probe, analyzer)
    return inputs


def get_compare_spec(wildcards):
    return report_spec(wildcards.report)


def get_compare_variants(wildcards):
    return [v.name for v in WB.variants]


def get_compare_code(wildcards):
    return get_code("compare.py")


def sweep_spec(sweep):
    """A sweep file (this family's, or the nearest parent's), checked against this config:
    an unknown measure, or one whose artifact this config does not produce, is an error
    before any job runs."""
    from tdw import analyzers
    from tdw.pages.sweep_spec import load_sweep_spec, sweep_file

    return load_sweep_spec(sweep_file(FAMILY, sweep), WB.analyzers, analyzers.REGISTRY)


def get_sweep_inputs(wildcards):
    """The sweep file; per variant: history, metadata, config.json and the artifacts its
    measures read."""
    from tdw.pages.sweep_spec import needed_artifacts, sweep_file

    inputs = {"spec": str(sweep_file(FAMILY, wildcards.sweep))}
    needed = needed_artifacts(sweep_spec(wildcards.sweep))
    for v in WB.variants:
        files = variant_layout(v.name)
        for key in ("history", "metadata", "config"):
            inputs[f"{v.name}.{key}"] = getattr(files, key)
        for analyzer in needed:
            inputs[f"{v.name}.artifact.{analyzer}"] = files.artifact(WB.probe, analyzer)
    return inputs


def get_sweep_spec(wildcards):
    return sweep_spec(wildcards.sweep)


def get_sweep_code(wildcards):
    return get_code("sweep.py")


def _sweep_pages():
    from tdw.pages.sweep_spec import sweep_names

    return sweep_names(FAMILY)


SWEEPS = _sweep_pages()
# The sweep pages this config builds are checked now, before the DAG is built.
for _sweep in SWEEPS:
    sweep_spec(_sweep)


# The reports this config builds are checked now, before the DAG is built.
for _report in WB.reports:
    report_spec(_report)


def get_all_targets():
    targets = []
    for v in WB.variants:
        files = variant_layout(v.name)
        targets += [files.figure(fig, ext) for fig in WB.figures for ext in ("html", "png", "svg")]
        targets += [files.report(r) for r in WB.reports]
        if KEEP_CACHES and stops_early(v):
            targets.append(files.cache_dir(WB.probe))
        elif KEEP_CACHES:
            targets += [files.cache(WB.probe, e) for e in v.epochs]
        targets += [files.artifact(WB.probe, a) for a in WB.analyzers]
    # One comparison page per report configuration: a single cheap job over all variants.
    targets += [FAMILY_RESULTS.compare(r) for r in WB.reports]
    targets += [FAMILY_RESULTS.sweep(s) for s in SWEEPS]  # one sweep page per sweep file
    return targets
