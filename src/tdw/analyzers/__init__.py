"""The analyzer registry: name -> module. Adding an analyzer is one module defining
``ANALYZER`` plus one line here (and the family entries that offer it)."""

from __future__ import annotations

import importlib

from tdw.analyzers.base import Analyzer, supports, unsupported

REGISTRY: dict[str, str] = {
    "embedding_frequencies": "tdw.analyzers.embedding_frequencies",
    "neuron_activations": "tdw.analyzers.neuron_activations",
    "neuron_clusters": "tdw.analyzers.neuron_clusters",
    "progress_measures": "tdw.analyzers.progress_measures",
    "attention": "tdw.analyzers.attention",
    "dimensionality": "tdw.analyzers.dimensionality",
    "transitions": "tdw.analyzers.transitions",
    "geometry": "tdw.analyzers.geometry",
    "ablations": "tdw.analyzers.ablations",
    "weight_norms": "tdw.analyzers.weight_norms",
    "induction": "tdw.analyzers.induction",
    "induction_loss": "tdw.analyzers.induction_loss",
    "clock_pizza": "tdw.analyzers.clock_pizza",
    "llc": "tdw.analyzers.llc",
    "llc_calibration": "tdw.analyzers.llc_calibrate",
    "lmc": "tdw.analyzers.lmc",
    "cka": "tdw.analyzers.cka",
    "essential_dynamics": "tdw.analyzers.essential_dynamics",
    "sharpness": "tdw.analyzers.sharpness",
    "interventions": "tdw.analyzers.interventions",
    "llc_restricted": "tdw.analyzers.llc_restricted",
    "susceptibilities": "tdw.analyzers.susceptibilities",
}


def get(name: str) -> Analyzer:
    if name not in REGISTRY:
        raise KeyError(f"unknown analyzer {name!r}; registered: {sorted(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).ANALYZER


def cache_provides(spec: dict, hook: str) -> bool:
    """Whether a family's cache holds ``hook`` (stored, or finished from the last block's
    cached ``hook_resid_mid`` at the last position, see ``tdw.models.tail``)."""
    from tdw.models.architecture import ModelConfig
    from tdw.models.hooks import resolve
    from tdw.models.tail import source_hook, tail_hooks

    cfg = ModelConfig(p=3, **spec["architecture"])
    hook = resolve(hook, cfg)
    if hook in spec["cache"]:
        return True
    return hook in tail_hooks(cfg) and spec["cache"].get(source_hook(cfg), {}).get("positions") == "last"


def check_family_analyzers(spec: dict, source: str, task_source: str | None = None) -> None:
    """Each analyzer a family offers exists, supports its task and its model, and finds what it
    reads in the family's cache; each figure's source is an offered analyzer (or ``history``).
    ``task_source``: the file that declares the task, where it is not ``source``."""
    from tdw.errors import ConfigError
    from tdw.models.architecture import ModelConfig

    model = ModelConfig(p=3, **spec["architecture"])

    for name in spec["analyzers"]:
        if name not in REGISTRY:
            raise ConfigError(f"{source}: key 'analyzers.{name}': unknown analyzer; registered: {sorted(REGISTRY)}")
        analyzer = get(name)
        if not supports(analyzer, spec["task"]):
            task = f"task {spec['task']}" + (f" of {task_source}" if task_source and task_source != source else "")
            raise ConfigError(f"{source}: key 'analyzers.{name}': {unsupported(analyzer, spec['task'])} ({task})")
        if model.model not in analyzer.models:
            raise ConfigError(
                f"{source}: key 'analyzers.{name}': the analyzer supports models {list(analyzer.models)}, not {model.model!r}"
            )
        for hook in analyzer.reads_for(model, spec["analyzers"][name].get("params") or {}):
            if not cache_provides(spec, hook):
                raise ConfigError(f"{source}: key 'analyzers.{name}': reads {hook!r}, which the family's 'cache' does not keep")
        for probe in spec["analyzers"][name].get("probes", []):
            if probe not in spec["probes"]:
                raise ConfigError(f"{source}: key 'analyzers.{name}.probes': unknown probe {probe!r}")
    for fig, entry in spec["figures"].items():
        if entry["source"] != "history" and entry["source"] not in spec["analyzers"]:
            raise ConfigError(f"{source}: key 'figures.{fig}.source': {entry['source']!r} is not an analyzer of this family")
