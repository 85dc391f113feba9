# Config validation (before any job) and the get_* helpers every rule uses.
import dataclasses
import functools
import os
import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# Jobs (also under --sdm conda or on a cluster) import the package from this checkout.
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))

from tdw import config as tdw_config
from tdw import validation as tdw_validation
from tdw.io.variant import variant_config
from tdw.layout import FamilyLayout, cache_name, checkpoint_name
from tdw.workflow import identity, integrity, plan
from tdw.workflow.codehash import code_hash
from tdw.workflow.inputs import epoch_files, first_missing, latest, newer_than

# The embedded default config applies only when no --configfile is given: a config file means
# exactly what it says. `--config key=value` overrides apply on top of either.
if not workflow.config_settings.configfiles:
    workflow.configfile(str(Path(workflow.basedir) / "config" / "config.yaml"))

CONFIG_SOURCE = ", ".join(str(f) for f in workflow.configfiles) or "config"
# Snakemake reads --configfile itself and keeps the last value of a key given twice: each file
# is read again strictly (a duplicate key or a file that is not a mapping stops the run here).
for _file in workflow.configfiles:
    tdw_validation.load_yaml(_file)
# One resolved config per family: the config, or each entry of its `runs` list.
RUNS = tdw_config.resolve_runs(config, CONFIG_SOURCE, families_dir=str(Path(workflow.basedir) / "families"))
WB = RUNS[0]  # the first family's; results, keep_caches and batch_seeds are the same for every run
# Storage policy: false makes caches temporary (docs/STORAGE.md).
KEEP_CACHES = WB.keep_caches
FAMILY = WB.family
FAMILY_RESULTS = FamilyLayout(WB.results, FAMILY.name)
RUN_OF = {v.name: wb for wb in RUNS for v in wb.variants}  # variant names are unique across the runs
RUN_OF_FAMILY = {wb.family.name: wb for wb in RUNS}
# The wildcard patterns rules declare: the layout of variant "{variant}" of family "{family}".
V = FamilyLayout(WB.results, "{family}").variant("{variant}")
# The comparison pages span every run's variants: <results>/<family>/compare/, or with several
# families <results>/<family1>+<family2>/compare/.
COMPARE_RESULTS = FamilyLayout(WB.results, "+".join(RUN_OF_FAMILY))
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
ENV = "../envs/workbench.yaml"
# Rules are planned over every run's variants; a seed batch holds variants of one family.
EPOCH_CLASSES = plan.epoch_classes(dataclasses.replace(WB, variants=tuple(v for wb in RUNS for v in wb.variants)))
SEED_BATCHES = plan.unique_batch_names({wb.family.name: plan.seed_batches(wb) for wb in RUNS})
TRAIN_NAMES = [n for wb in RUNS for n in plan.train_alone(wb)]
# One train rule per trained schedule; with no trained variant, `train` still exists (no job).
TRAIN_CLASSES = [c for c in EPOCH_CLASSES if not c.legacy] or [plan.EpochClass("trained", False, (), ())]


def run_of(variant):
    """The resolved config (family, recipe, analyzers, ...) variant ``variant`` belongs to."""
    if variant not in RUN_OF:
        raise tdw_config.ConfigError(f"{CONFIG_SOURCE}: no variant named {variant!r}; variants: {sorted(RUN_OF)}")
    return RUN_OF[variant]


def wildcard_variant(wildcards):
    """The variant a job's wildcards name, which must be of the job's family."""
    wb = run_of(wildcards.variant)
    if wildcards.get("family", wb.family.name) != wb.family.name:
        raise tdw_config.ConfigError(
            f"{CONFIG_SOURCE}: variant {wildcards.variant!r} is of family {wb.family.name}, not {wildcards.family}"
        )
    return wb.variant(wildcards.variant)


def variant_layout(variant):
    """The files of one variant, in its family's folder."""
    return FamilyLayout(WB.results, run_of(variant).family.name).variant(variant)


def log_file(rule, job, ext="log", family="{family}"):
    """A job's log (``ext="bench.tsv"``: its benchmark) under logs/<family>/<rule>/."""
    return FamilyLayout(WB.results, family).log(rule, job, ext)


def get_family(wildcards):
    return wildcards.family


wildcard_constraints:
    family=plan.alternatives(RUN_OF_FAMILY),
    variant=plan.alternatives(RUN_OF),
    analyzer=plan.alternatives({a for wb in RUNS for a in wb.analyzers}),
    figure=plan.alternatives({f for wb in RUNS for f in wb.figures}),
    probe="[A-Za-z0-9_-]+",


def cache_outputs(paths):
    """Caches are kept, or (keep_caches: false) deleted once the jobs reading them finish."""
    return paths if KEEP_CACHES else temp(paths)


def caches_in_folder(epoch_class):
    """Whether the class's forward pass declares the cache folder: early stopping (the epochs
    reached are known once training ends) or caches not kept (a temporary folder)."""
    return epoch_class.early_stop or not KEEP_CACHES


def stops_early(v):
    """Whether variant ``v`` trains with early stopping: its rules declare its checkpoint and
    cache folders, whose files are the epochs its metadata.json lists (tdw.train.early_stop)."""
    return not v.is_legacy and (v.train or run_of(v.name).train).early_stop is not None


def checkpoint_outputs(epoch_class):
    """The checkpoint outputs of the train rules of an epoch class (its checkpoint files), or (early stopping)
    the folder holding the checkpoints reached."""
    if epoch_class.early_stop:
        return directory(V.folder("checkpoints"))
    return epoch_files(V.folder("checkpoints"), checkpoint_name, epoch_class.epochs)


def cache_of(v, probe):
    """The file standing for variant ``v``'s caches of ``probe`` (tdw.workflow.inputs): the cache
    folder when the rule declares one (early stopping; caches not kept), else the last epoch's."""
    files = variant_layout(v.name)
    return files.cache_dir(probe) if stops_early(v) or not KEEP_CACHES else files.cache(probe, v.epochs[-1])


@functools.cache
def changed_files(variant, probe=None):
    """The checkpoints, and (``probe``) caches, changed after the job that wrote them ended: a
    param of the jobs reading them, so that such a change reruns them (tdw.workflow.inputs).
    Snakemake touches a job's outputs in order as it ends: the checkpoints before config.json
    (rules/train.smk), the caches before the first epoch's (rules/cache.smk)."""
    v, files = run_of(variant).variant(variant), variant_layout(variant)
    if stops_early(v):  # folders: Snakemake's timestamp of the folder
        return []
    changed = newer_than(epoch_files(files.folder("checkpoints"), checkpoint_name, v.epochs), files.config)
    if probe is not None and KEEP_CACHES:
        caches = epoch_files(files.cache_dir(probe), cache_name, v.epochs)
        # the first epoch's is touched last; in caches written before that order, the last epoch's
        changed += newer_than(caches, latest(caches[0], caches[-1]))
    return changed


def get_changed_checkpoints(wildcards):
    return changed_files(wildcards.variant)


@functools.cache
def get_code(script, *modules):
    """Content hash of a script and every workbench module it (and ``modules``) import (once per
    invocation: each analyzer and figure job of every variant asks)."""
    return code_hash(str(SCRIPTS / script), *modules)


def get_train_params(wildcards):
    return train_params(wildcard_variant(wildcards))


def train_params(v):
    """What a train job needs: the variant's own architecture and recipe."""
    wb = run_of(v.name)
    params = {
        "family": wb.family.name,
        "operation": wb.family.operation,
        "model": (v.model or wb.family.model_config(v.p)).to_dict(),
        "train": (v.train or wb.train).to_dict(),
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
    spec = wb.family.spec
    if "relabel" in spec["task"]:  # absent: no relabelling (the params of add and sub as before)
        params["relabel"] = spec["task"]["relabel"]
    if spec.get("training", {}).get("recipe", "full_batch") != "full_batch":  # absent: full batch
        from tdw.tasks import modular, sequence

        if wb.family.operation == sequence.OPERATION:
            params["recipe"] = sequence.recipe_values(spec["training"])
        else:
            params["recipe"] = modular.minibatch_values(spec["training"])
    if v.is_legacy:
        params["variant"]["legacy_test_every"] = v.legacy_test_every
    return params


def batch_outputs(batch, name):
    """Per-variant output files of a seed batch (``name``: checkpoints, history, metadata, config)."""
    if name == "checkpoints":
        folders = [variant_layout(v.name).folder("checkpoints") for v in batch.variants]
        return [
            path
            for v, folder in zip(batch.variants, folders)
            for path in ([directory(folder)] if stops_early(v) else epoch_files(folder, checkpoint_name, v.epochs))
        ]
    return [getattr(variant_layout(v.name), name) for v in batch.variants]


def get_legacy_path(wildcards):
    return wildcard_variant(wildcards).legacy_path


def get_cache_params(wildcards):
    v = wildcard_variant(wildcards)
    family = run_of(v.name).family
    params = {
        "variant": v.name,
        "p": v.p,
        "seed": v.seed,
        "train_frac": v.train_frac,
        "cache": family.spec["cache"],
    }
    # Only what differs from the seed and the family's architecture: params that change rerun the job.
    if v.data_seed != v.seed:
        params["data_seed"] = v.data_seed
    if v.model is not None and v.model != family.model_config(v.p):
        params["model"] = v.model.to_dict()
    return params


def get_probe_spec(wildcards):
    family = run_of(wildcards.variant).family
    if wildcards.probe not in family.spec["probes"]:
        raise ValueError(f"unknown probe {wildcards.probe!r}; family {family.name} offers {sorted(family.spec['probes'])}")
    return family.spec["probes"][wildcards.probe]


def get_analyzer_inputs(wildcards):
    """metadata.json (the checkpoints it lists), the checkpoint folder (early stopping), the
    caches' stand-in (``cache_of``) when the analyzer reads caches, the history if it needs it,
    and the metadata.json of each other variant it reads (``Analyzer.other_variants``)."""
    from tdw import analyzers

    v = wildcard_variant(wildcards)
    inputs = {"manifest": variant_layout(v.name).metadata}
    if stops_early(v):
        inputs["checkpoints"] = variant_layout(v.name).folder("checkpoints")
    if analyzers.get(wildcards.analyzer).reads:
        inputs["caches"] = cache_of(v, wildcards.probe)
    if analyzers.get(wildcards.analyzer).needs_history:
        inputs["history"] = variant_layout(v.name).history
    params = run_of(v.name).analyzer_params(wildcards.analyzer)
    for i, other in enumerate(analyzers.get(wildcards.analyzer).other_variants(params, v.p, v.seed)):
        if run_of(other).family.name != run_of(v.name).family.name:
            raise tdw_config.ConfigError(
                f"{CONFIG_SOURCE}: analyzer {wildcards.analyzer!r} of {v.name!r} reads variant {other!r}, of another family"
            )
        inputs[f"variant_{i}"] = variant_layout(other).metadata
    return inputs


def get_changed_inputs(wildcards):
    from tdw import analyzers

    return changed_files(wildcards.variant, wildcards.probe if analyzers.get(wildcards.analyzer).reads else None)


def get_analyzer_params(wildcards):
    return run_of(wildcards.variant).analyzer_params(wildcards.analyzer)


def get_analyzer_code(wildcards):
    from tdw.analyzers import REGISTRY

    return get_code("analyze.py", REGISTRY[wildcards.analyzer])


def view_inputs(variant, figure):
    """Files a figure (or report view) is drawn from."""
    from tdw.pages.report_spec import view_inputs

    wb = run_of(variant)
    return view_inputs(variant_layout(variant), wb.figures[figure]["source"], wb.probe)


def get_figure_inputs(wildcards):
    return view_inputs(wildcards.variant, wildcards.figure)


def get_figure_params(wildcards):
    return run_of(wildcards.variant).figures[wildcards.figure]


def get_figure_code(wildcards):
    from tdw.figures import REGISTRY

    return get_code("render.py", REGISTRY[wildcards.figure])


def get_static_inputs(wildcards, figures):
    """Every figure's inputs for the variant's static images, keyed ``<figure>.<input>``."""
    return {f"{fig}.{key}": path for fig in figures for key, path in view_inputs(wildcards.variant, fig).items()}


def get_static_code(figures):
    from tdw.figures import REGISTRY

    return get_code("static.py", *(REGISTRY[f] for f in figures))


def report_file(report, wb=WB):
    return str(wb.family.root / "reports" / f"{report}.json")


def report_spec(report, wb=WB):
    """A report configuration, checked against the family and its run's config (unknown view,
    missing artifact, unknown parameter: an error before any job runs)."""
    from tdw.pages.report_spec import load_report_spec

    return load_report_spec(report_file(report, wb), wb.figures, wb.family.spec["figures"])


def report_views(report, wb=WB):
    return report_spec(report, wb)["views"]


def get_report_inputs(wildcards):
    wb = run_of(wildcards.variant)
    inputs = {"spec": report_file(wildcards.report, wb), "metadata": variant_layout(wildcards.variant).metadata}
    for view in report_views(wildcards.report, wb):
        for key, path in view_inputs(wildcards.variant, view["figure"]).items():
            inputs[f"{view['figure']}.{key}"] = path
    return inputs


def get_report_spec(wildcards):
    return report_spec(wildcards.report, run_of(wildcards.variant))


def get_report_code(wildcards):
    from tdw.figures import REGISTRY

    views = report_views(wildcards.report, run_of(wildcards.variant))
    return get_code("report.py", "tdw.pages.report_spec", *(REGISTRY[v["figure"]] for v in views))


# One comparison page per report configuration of the first family that every family has.
COMPARE_REPORTS = [r for r in WB.reports if all(r in wb.reports for wb in RUNS)]


def get_compare_inputs(wildcards):
    """Per variant of every family: history, metadata, and the embedding_frequencies /
    transitions artifacts when its run produces them."""
    inputs = {"spec": report_file(wildcards.report)}
    for wb in RUNS:
        for v in wb.variants:
            files = variant_layout(v.name)
            inputs[f"{v.name}.history"] = files.history
            inputs[f"{v.name}.metadata"] = files.metadata
            for analyzer, key in (("embedding_frequencies", "embedding"), ("transitions", "transitions")):
                if analyzer in wb.analyzers:
                    inputs[f"{v.name}.{key}"] = files.artifact(wb.probe, analyzer)
    return inputs


def get_compare_spec(wildcards):
    return report_spec(wildcards.report)


def get_compare_variants(wildcards):
    return list(RUN_OF)


def get_compare_families(wildcards):
    return list(RUN_OF_FAMILY)


def get_compare_code(wildcards):
    return get_code("compare.py")


def sweep_spec(sweep, wb=WB):
    """A sweep file (the run's family's, or the nearest parent's), checked against its run's
    config: an unknown measure, or one whose artifact the run does not produce, is an error
    before any job runs."""
    from tdw import analyzers
    from tdw.pages.sweep_spec import load_sweep_spec, sweep_file

    return load_sweep_spec(sweep_file(wb.family, sweep), wb.analyzers, analyzers.REGISTRY)


def get_sweep_inputs(wildcards):
    """The sweep file; per variant of the family: history, metadata, config.json and the
    artifacts its measures read."""
    from tdw.pages.sweep_spec import needed_artifacts, sweep_file

    wb = RUN_OF_FAMILY[wildcards.family]
    inputs = {"spec": str(sweep_file(wb.family, wildcards.sweep))}
    needed = needed_artifacts(sweep_spec(wildcards.sweep, wb))
    for v in wb.variants:
        files = variant_layout(v.name)
        for key in ("history", "metadata", "config"):
            inputs[f"{v.name}.{key}"] = getattr(files, key)
        for analyzer in needed:
            inputs[f"{v.name}.artifact.{analyzer}"] = files.artifact(wb.probe, analyzer)
    return inputs


def get_sweep_spec(wildcards):
    return sweep_spec(wildcards.sweep, RUN_OF_FAMILY[wildcards.family])


def get_sweep_variants(wildcards):
    return [v.name for v in RUN_OF_FAMILY[wildcards.family].variants]


def get_sweep_code(wildcards):
    return get_code("sweep.py")


def _sweep_pages(wb):
    from tdw.pages.sweep_spec import sweep_names

    return sweep_names(wb.family)


SWEEPS = {wb.family.name: _sweep_pages(wb) for wb in RUNS}  # family -> its sweep files
# The sweep pages and reports this config builds are checked now, before the DAG is built.
for _wb in RUNS:
    for _sweep in SWEEPS[_wb.family.name]:
        sweep_spec(_sweep, _wb)
    for _report in _wb.reports:
        report_spec(_report, _wb)


def kept_caches(wb, v):
    """The caches of variant ``v`` among the final targets (kept caches): their stand-in unless an
    analyzer's job names it already (a target names it without wildcards, and Snakemake then
    tries every output of the rule), and the first missing checkpoint and cache once the job
    writing them all has run (a missing output reruns it)."""
    from tdw import analyzers

    if not KEEP_CACHES:
        return []
    if stops_early(v):
        return [cache_of(v, wb.probe)]
    files = variant_layout(v.name)
    read = any(analyzers.get(a).reads for a in wb.analyzers)
    targets = [] if read else [cache_of(v, wb.probe)]
    if files.metadata.exists():
        targets += first_missing(epoch_files(files.folder("checkpoints"), checkpoint_name, v.epochs))
    if Path(cache_of(v, wb.probe)).exists():
        targets += first_missing(epoch_files(files.cache_dir(wb.probe), cache_name, v.epochs))
    return targets


# A variant's name determines its definition: a folder holding the same name defined otherwise
# stops the run here, unless the user typed --config replace=NAME; those folders are set aside
# when the run starts (not in a dry run), before any job writes (tdw.workflow.identity).
REPLACING = identity.check_existing(
    [
        (variant_layout(v.name), variant_config(train_params(v) | {"legacy_path": v.legacy_path}))
        for v in (run_of(n).variant(n) for n in RUN_OF)
    ],
    identity.replace_names(config.get("replace"), CONFIG_SOURCE, RUN_OF),
    CONFIG_SOURCE,
)
for _c in REPLACING:
    print(f"variant {_c.variant!r} is replaced (--config replace): {_c.describe()}", file=sys.stderr)


onstart:
    if workflow.is_main_process:
        for _line in identity.set_aside(REPLACING):
            print(_line, file=sys.stderr)


# Existing outputs that are truncated or unreadable are moved aside now, so this run regenerates
# them (they are default targets: Snakemake skips a missing file whose dependents are up to date).
BROKEN = integrity.check_workflow(RUNS) if workflow.is_main_process else []


def get_all_targets():
    targets = []
    for wb in RUNS:
        for v in wb.variants:
            files = variant_layout(v.name)
            targets.append(files.history)  # a deleted history reruns training (which resumes)
            targets += [files.figure(fig, ext) for fig in wb.figures for ext in ("html", "png", "svg")]
            targets += [files.report(r) for r in wb.reports]
            targets += kept_caches(wb, v)
            targets += [files.artifact(wb.probe, a) for a in wb.analyzers]
        # one sweep page per sweep file of the family
        targets += [FamilyLayout(WB.results, wb.family.name).sweep(s) for s in SWEEPS[wb.family.name]]
    # One comparison page per report configuration: a single cheap job over all variants.
    targets += [COMPARE_RESULTS.compare(r) for r in COMPARE_REPORTS]
    return targets + [str(b.path) for b in BROKEN]
