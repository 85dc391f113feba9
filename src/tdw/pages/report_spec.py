"""Report configurations, saved per family and applicable to any of its variants:
``families/<family>/reports/<name>.json`` lists the views a report shows, each with
optional visual-parameter overrides::

    {"title": "Training dynamics: {variant}",
     "description": "...",
     "views": ["loss_curves",
               {"figure": "embedding_frequencies", "title": "...", "params": {"colorscale": "Magma"}},
               {"figure": "ablations", "optional": true}]}

A spec is checked against the family and the config before any job runs: an unknown view,
a view whose artifact this config does not produce, or an unknown parameter is an error;
an ``optional`` view is left out (not an error) where its artifact is not produced, so one
report can list every analyzer's view and still apply to configs that run fewer.
"""

from __future__ import annotations

from pathlib import Path

from tdw.config import ConfigError
from tdw.layout import VariantLayout
from tdw.params import ParamError, resolve_params
from tdw.validation import read_json

KEYS = {"title", "description", "views"}
VIEW_KEYS = {"figure", "title", "params", "optional"}


def _view_entry(entry: object, where: str) -> dict:
    if isinstance(entry, str):
        entry = {"figure": entry}
    if not isinstance(entry, dict) or "figure" not in entry or set(entry) - VIEW_KEYS:
        raise ConfigError(
            f"{where}: a view is a figure name or {{'figure': str, 'title'?: str, 'params'?: {{...}}, 'optional'?: bool}}"
        )
    if not isinstance(entry.get("params", {}), dict) or not isinstance(entry.get("title", ""), str):
        raise ConfigError(f"{where}: 'params' must be an object and 'title' a string")
    if not isinstance(entry.get("optional", False), bool):
        raise ConfigError(f"{where}: 'optional' must be true or false")
    return entry


def load_report_spec(path: str | Path, figures: dict, family_figures: dict) -> dict:
    """Read and check a report file. ``figures``: the figures this config renders
    (``Workbench.figures``: name -> {source, params}); ``family_figures``: the family's
    ``figures`` section. Returns the spec with each view resolved to
    ``{figure, title, source, params}`` (family defaults, config overrides, then the
    report's own)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such report configuration")
    spec = read_json(path)
    if not isinstance(spec, dict) or set(spec) - KEYS or not isinstance(spec.get("views"), list) or not spec["views"]:
        raise ConfigError(f"{path}: expected {{'title'?: str, 'description'?: str, 'views': [view, ...]}} with at least one view")
    for key in ("title", "description"):
        if not isinstance(spec.get(key, ""), str):
            raise ConfigError(f"{path}: key {key!r} must be a string")
    views = []
    for i, raw in enumerate(spec["views"]):
        entry = _view_entry(raw, f"{path}: key 'views.{i}'")
        name = entry["figure"]
        where = f"{path}: key 'views.{i}' ({name!r})"
        if name not in family_figures:
            raise ConfigError(f"{where}: unknown view; the family offers {sorted(family_figures)}")
        if name not in figures and entry.get("optional", False):
            continue
        if name not in figures:
            source = family_figures[name]["source"]
            raise ConfigError(
                f"{where}: the view draws the artifact of analyzer {source!r}, which this config does not produce "
                f"(add it to the config's 'analyzers', or drop the view)"
            )
        views.append(
            {
                "figure": name,
                "title": entry.get("title", name.replace("_", " ")),
                "source": figures[name]["source"],
                "params": checked_params(name, figures[name]["params"], entry.get("params", {}), where),
            }
        )
    return {"title": spec.get("title", "{variant}"), "description": spec.get("description", ""), "views": views}


def checked_params(figure: str, base: dict, overrides: dict, where: str) -> dict:
    """``base`` with ``overrides``, checked against the figure's declared parameters (an
    unknown name or a value of the wrong type is a ``ConfigError`` opening with ``where``)."""
    from tdw.figures import params as declared

    try:
        return resolve_params(declared(figure), base | overrides, where)
    except ParamError as err:
        raise ConfigError(str(err)) from err


def report_title(spec: dict, family: str, variant: str) -> str:
    return spec["title"].replace("{variant}", variant).replace("{family}", family)


def view_inputs(variant: Path | VariantLayout, source: str, probe: str) -> dict[str, Path]:
    """The files a view draws from (a variant folder or layout): the history and metadata,
    or the artifact of analyzer ``source`` for ``probe``."""
    layout = variant if isinstance(variant, VariantLayout) else VariantLayout.at(variant)
    if source == "history":
        return {"history": layout.history, "metadata": layout.metadata}
    return {"artifact": layout.artifact(probe, source)}


def available_figures(variant_dir: Path, family_spec: dict, probe: str) -> dict:
    """The family's figures whose source exists in this variant folder: name -> {source, params}."""
    out = {}
    for name, fig in family_spec["figures"].items():
        if all(p.exists() for p in view_inputs(variant_dir, fig["source"], probe).values()):
            out[name] = {"source": fig["source"], "params": dict(fig.get("params", {}))}
    return out


def variant_report(
    variant_dir: Path, family: str, family_spec: dict, families_dir: Path, report: str, overrides: dict | None = None
) -> tuple[dict, list[dict]]:
    """A report of one variant folder outside a workflow run (dashboard, export): the checked
    spec over the figures the variant has, with per-view parameter ``overrides``
    ({figure: {param: value}}), and its views with their input files."""
    probe = family_spec["default_probe"]
    figures = available_figures(Path(variant_dir), family_spec, probe)
    for name, params in (overrides or {}).items():
        if name not in figures:
            raise ConfigError(f"parameters for {name!r}: not a view of this variant; views: {sorted(figures)}")
        figures[name]["params"] = checked_params(name, figures[name]["params"], params, f"view {name!r}")
    spec = load_report_spec(Path(families_dir) / family / "reports" / f"{report}.json", figures, family_spec["figures"])
    views = [v | {"inputs": view_inputs(Path(variant_dir), v["source"], probe)} for v in spec["views"]]
    return spec, views
