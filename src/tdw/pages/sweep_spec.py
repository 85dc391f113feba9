"""Sweep page configurations, saved per family: ``families/<family>/sweeps/<name>.json``
chooses the measures a sweep page plots against the swept parameters::

    {"title": "How grokking depends on the swept parameters",
     "description": "...",
     "thresholds": {"memorise": 0.1, "generalise": 0.1},
     "measures": ["epochs_to_memorise",
                  {"name": "cleanup_start", "optional": true},
                  {"artifact": "transitions", "dataset": "total_sum_sq_weights", "at": "final",
                   "label": "final sum of squared weights", "optional": true}]}

A measure is a built-in name (``BUILTIN``) or a scalar of an analyzer's artifact: its
``dataset`` at the last epoch (``"at": "final"``, the default), at one checkpoint's epoch
(``"at": 600``) or whole (``"all"``), reduced to one number by ``reduce`` where it is not one;
``error`` names a dataset of the same artifact, taken the same way, drawn as each seed's
error bar (the LLC's std over chains beside its mean)::

    {"artifact": "llc", "dataset": "llc_mean", "error": "llc_std", "at": "final", "name": "final_llc"}
 ``thresholds``: a variant has memorised at
the first epoch its train loss is below ``memorise`` and generalised at the first epoch its
test loss is below ``generalise`` (both 0.1 unless given: a cross-entropy of 0.1 puts about
90 % probability on the right answer). A family that extends another uses its parent's
sweep files unless it has a file of the same name. Checked before any job runs: an unknown
key or measure, or a measure whose artifact this config does not produce (unless it is
``optional``: then it is left out), is an error naming the file and key.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from tdw.families import Family
from tdw.pages.sweep_data import REDUCERS
from tdw.validation import ConfigError, read_json

FOLDER = "sweeps"
KEYS = {"title", "description", "thresholds", "measures"}
MEASURE_KEYS = {"name", "label", "artifact", "dataset", "at", "reduce", "error", "optional"}
THRESHOLDS = {"memorise": 0.1, "generalise": 0.1}
BOUNDARY_NAMES = ("memorisation_end", "cleanup_start", "cleanup_end")
# name -> (label, the analyzer whose artifact it reads, or "history")
BUILTIN = {
    "epochs_to_memorise": ("epochs to memorise (train loss below threshold)", "history"),
    "epochs_to_generalise": ("epochs to generalise (test loss below threshold)", "history"),
    "generalisation_gap": ("epochs from memorising to generalising", "history"),
    "final_train_loss": ("final train loss", "history"),
    "final_test_loss": ("final test loss", "history"),
    "stop_epoch": ("epoch training stopped at (train.early_stop; not reached: it did not stop early)", "history"),
    **{b: (f"{b.replace('_', ' ')} (transitions: phase boundary epoch)", "transitions") for b in BOUNDARY_NAMES},
}


def sweep_names(family: Family) -> list[str]:
    """The sweep files of a family and the families it extends, by name."""
    return sorted({p.stem for f in family.files for p in (f.parent / FOLDER).glob("*.json")})


def sweep_file(family: Family, name: str) -> Path:
    """The nearest family of the ``extends`` chain with ``sweeps/<name>.json``."""
    for f in family.files:
        path = f.parent / FOLDER / f"{name}.json"
        if path.exists():
            return path
    folders = ", ".join(str(f.parent / FOLDER) for f in family.files)
    raise ConfigError(f"sweep page {name!r}: no {name}.json in {folders}; sweep files: {sweep_names(family)}")


def _measure(entry: object, where: str) -> dict:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or set(entry) - MEASURE_KEYS:
        raise ConfigError(f"{where}: a measure is a name or an object with keys among {sorted(MEASURE_KEYS)}; got {entry!r}")
    if "artifact" not in entry:
        if entry.get("name") not in BUILTIN:
            raise ConfigError(f"{where}: unknown measure {entry.get('name')!r}; built-in measures: {', '.join(BUILTIN)}")
        label, source = BUILTIN[entry["name"]]
        return {
            "name": entry["name"],
            "label": entry.get("label", label),
            "source": source,
            "optional": entry.get("optional", False),
        }
    if not isinstance(entry["artifact"], str) or not isinstance(entry.get("dataset"), str):
        raise ConfigError(f"{where}: an artifact measure needs 'artifact' (an analyzer) and 'dataset' (strings)")
    at, reduce, error = entry.get("at", "final"), entry.get("reduce"), entry.get("error")
    if at not in ("final", "all") and (isinstance(at, bool) or not isinstance(at, int) or at < 0):
        raise ConfigError(f"{where}: key 'at': {at!r}; expected 'final', 'all' or a checkpoint's epoch (an integer >= 0)")
    if error is not None and not isinstance(error, str):
        raise ConfigError(f"{where}: key 'error': {error!r}; expected the name of a dataset of the same artifact")
    if reduce is not None and reduce not in REDUCERS:
        raise ConfigError(f"{where}: key 'reduce': {reduce!r}; expected one of {', '.join(REDUCERS)}")
    at_name = at if isinstance(at, str) else f"epoch{at}"
    name = entry.get("name", "_".join(filter(None, (entry["artifact"], entry["dataset"], at_name, reduce))))
    label = entry.get("label", f"{entry['artifact']}: {entry['dataset']} ({at}{', ' + reduce if reduce else ''})")
    return {
        "name": name,
        "label": label,
        "source": entry["artifact"],
        "dataset": entry["dataset"],
        "at": at,
        "reduce": reduce,
        "error": error,
        "optional": entry.get("optional", False),
    }


def _read(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"sweep page file {path} not found")
    spec = read_json(path)
    if not isinstance(spec, dict) or set(spec) - KEYS:
        raise ConfigError(f"{path}: expected an object with keys among {sorted(KEYS)}")
    if not isinstance(spec.get("measures"), list) or not spec["measures"]:
        raise ConfigError(f"{path}: key 'measures': expected a non-empty list of measures")
    for key in ("title", "description"):
        if not isinstance(spec.get(key, ""), str):
            raise ConfigError(f"{path}: key {key!r}: expected a string")
    return spec


def _thresholds(raw: object, path: Path) -> dict[str, float]:
    if not isinstance(raw, dict) or set(raw) - set(THRESHOLDS):
        raise ConfigError(f"{path}: key 'thresholds': expected an object with keys among {sorted(THRESHOLDS)}; got {raw!r}")
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{path}: key 'thresholds.{key}': {value!r}; expected a positive number (a loss)")
    return THRESHOLDS | {k: float(v) for k, v in raw.items()}


def load_sweep_spec(path: str | Path, analyzers: Collection[str], known: Collection[str]) -> dict:
    """Read and check a sweep file. ``analyzers``: those this config runs; ``known``: every
    registered analyzer. Returns ``{title, description, thresholds, measures}``, each measure
    resolved to ``{name, label, source, ...}``; optional measures whose artifact this config
    does not produce are left out."""
    path = Path(path)
    spec = _read(path)
    measures, names = [], set()
    for i, raw in enumerate(spec["measures"]):
        where = f"{path}: key 'measures.{i}'"
        m = _measure(raw, where)
        if not isinstance(m["optional"], bool):
            raise ConfigError(f"{where}: key 'optional': expected true or false")
        if m["source"] != "history" and m["source"] not in known:
            raise ConfigError(f"{where}: unknown analyzer {m['source']!r}; registered: {sorted(known)}")
        if m["source"] != "history" and m["source"] not in analyzers:
            if m["optional"]:
                continue
            raise ConfigError(
                f"{where} ({m['name']!r}): reads the artifact of analyzer {m['source']!r}, which this config does not "
                f"produce (it runs {sorted(analyzers)}); add it to the config's 'analyzers', or mark the measure optional"
            )
        if m["name"] in names:
            raise ConfigError(f"{where}: a second measure named {m['name']!r}; give it its own 'name'")
        names.add(m["name"])
        measures.append(m)
    return {
        "title": spec.get("title", "Sweep: {family}"),
        "description": spec.get("description", ""),
        "thresholds": _thresholds(spec.get("thresholds", {}), path),
        "measures": measures,
    }


def needed_artifacts(spec: dict) -> list[str]:
    """The analyzers whose artifacts a checked spec reads."""
    return sorted({m["source"] for m in spec["measures"]} - {"history"})
