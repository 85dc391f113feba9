"""Per-variant HTML reports of the views a family's saved report configuration chooses: one
self-contained file that works offline (plotly.js embedded once), one global checkpoint
slider moving every view, the epoch <-> checkpoint mapping and a jump to an epoch beside it.
Text from files is always HTML-escaped."""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path

from tdw.figures.views import View, checkpoint_epochs, load_view, safe_json
from tdw.io.atomic import write_text
from tdw.io.provenance import provenance
from tdw.pages.report_spec import report_title


def template(name: str) -> str:
    return resources.files("tdw").joinpath("templates", name).read_text()


def _table(rows: list[tuple[str, object]], cls: str = "tdw-info") -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{cells}</table>'


def _controls(epochs: list[int]) -> str:
    last = len(epochs) - 1
    mapping = "".join(f"<tr><td>{i}</td><td>{e}</td></tr>" for i, e in enumerate(epochs))
    return f"""<div id="tdw-controls">
<label for="tdw-slider">checkpoint</label>
<input type="range" id="tdw-slider" min="0" max="{last}" step="1" value="{last}">
<span id="tdw-position">checkpoint #{last} of {last} &middot; epoch {epochs[last]}</span>
<form id="tdw-jump"><label>jump to epoch <input type="number" id="tdw-epoch" min="0" step="1"></label>
<button type="submit">go</button></form>
<details><summary>epoch &harr; checkpoint</summary><div class="tdw-mapping">
<table><tr><th>checkpoint</th><th>epoch</th></tr>{mapping}</table></div></details>
</div>"""


def _loss(value: object) -> object:
    """A loss to four significant digits (2.699e-07); other values as they are."""
    return f"{value:.4g}" if isinstance(value, float) else value


def _info(family: str, variant: str, metadata: dict) -> str:
    final = metadata.get("final", {})
    return _table(
        [
            ("family", family),
            ("variant", variant),
            ("source", metadata.get("source", "")),
            ("checkpoints", len(metadata.get("checkpoints", []))),
            ("final epoch", final.get("epoch")),
            ("final train loss", _loss(final.get("train_loss"))),
            ("final test loss", _loss(final.get("test_loss"))),
        ]
    )


def render_page(title: str, description: str, views: list[View], epochs: list[int], info: str, record: dict) -> str:
    """The page around views that share one checkpoint axis (``epochs``)."""
    from plotly.offline import get_plotlyjs

    sections = "".join(
        f'<section><h2>{html.escape(v.title)}</h2><div id="tdw-view-{n}" class="tdw-view"></div></section>'
        for n, v in enumerate(views)
    )
    payload = {"epochs": epochs, "views": [v.payload(epochs) | {"figure_name": v.name} for v in views]}
    footer = (
        f"made by tdw {html.escape(str(record.get('git_commit')))} on {html.escape(str(record.get('created')))}; "
        "full provenance in the #tdw-provenance element"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{template("report.css")}</style>
<script>{get_plotlyjs()}</script></head>
<body><h1>{html.escape(title)}</h1>
<p class="tdw-description">{html.escape(description)}</p>
{info}
{_controls(epochs)}
{sections}
<footer>{footer}</footer>
<script type="application/json" id="tdw-provenance">{safe_json(record)}</script>
<script type="application/json" id="tdw-data">{safe_json(payload)}</script>
<script>{template("report.js")}</script>
</body></html>
"""


def build_report(spec: dict, variant: str, family: str, views: list[dict], metadata: dict) -> str:
    """``spec`` from ``tdw.pages.report_spec.load_report_spec``; ``views``: its resolved views,
    each with ``inputs`` (the files it is drawn from)."""
    epochs = checkpoint_epochs(metadata)
    built = [
        load_view(v["figure"], v["source"], {k: Path(p) for k, p in v["inputs"].items()}, v["params"], html.escape(v["title"]))
        for v in views
    ]
    for view, v in zip(built, views, strict=True):
        view.title = v["title"]  # the page escapes it itself; Plotly got the escaped text
    record = provenance() | {
        "family": family,
        "variant": variant,
        "views": [
            {k: v[k] for k in ("figure", "title", "params")} | {"inputs": {k: str(p) for k, p in v["inputs"].items()}}
            for v in views
        ],
    }
    title = report_title(spec, family, variant)
    return render_page(title, spec.get("description", ""), built, epochs, _info(family, variant, metadata), record)


def write_report(path: Path, **kwargs) -> None:
    write_text(path, build_report(**kwargs))


def load_metadata(path: Path) -> dict:
    """A variant's metadata.json, checked against its schema."""
    from tdw.io.variant import read_metadata_json

    return read_metadata_json(path)
