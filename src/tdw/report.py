"""Per-variant HTML reports: one self-contained, offline file (plotly.js embedded once)
showing the views a report configuration lists. All text is HTML-escaped."""

from __future__ import annotations

import html
import json
from pathlib import Path

from tdw.atomic import write_text
from tdw.config import ConfigError
from tdw.figures import builder
from tdw.render import figure_data


def load_report_config(path: Path, known_views: list[str]) -> dict:
    try:
        spec = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(spec, dict) or set(spec) - {"title", "views", "description"} or not isinstance(spec.get("views"), list):
        raise ConfigError(f"{path}: expected {{'title': str, 'views': [figure names], 'description'?: str}}")
    for view in spec["views"]:
        if view not in known_views:
            raise ConfigError(f"{path}: key 'views': unknown view {view!r}; this family and config offer {sorted(known_views)}")
    return spec


def _table(rows: list[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def build_report(spec: dict, variant: str, family: str, views: dict[str, dict], metadata: dict) -> str:
    """views: ``{figure: {"source", "params", "inputs"}}`` in display order."""
    from plotly.offline import get_plotlyjs

    title = spec.get("title", "{variant}").replace("{variant}", variant).replace("{family}", family)
    blocks = []
    for i, (name, view) in enumerate(views.items()):
        fig = builder(name)(figure_data(view["source"], view["inputs"]), view["params"], name.replace("_", " "))
        payload = fig.to_json().replace("</", "<\\/")
        blocks.append(
            f'<section><h2>{html.escape(name)}</h2><div id="view{i}" class="view"></div>'
            f'<script type="application/json" id="data{i}">{payload}</script></section>'
        )
    final = metadata.get("final", {})
    info = _table(
        [
            ("family", family),
            ("variant", variant),
            ("source", metadata.get("source", "")),
            ("checkpoints", len(metadata.get("checkpoints", []))),
            ("final epoch", final.get("epoch")),
            ("final train loss", final.get("train_loss")),
            ("final test loss", final.get("test_loss")),
            ("git commit", metadata.get("provenance", {}).get("git_commit")),
        ]
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}} th{{text-align:left;padding-right:1em}}</style>
<script>{get_plotlyjs()}</script></head>
<body><h1>{html.escape(title)}</h1>
<p>{html.escape(spec.get("description", ""))}</p>
{info}
{"".join(blocks)}
<script>
document.querySelectorAll("div.view").forEach(function (div) {{
  var fig = JSON.parse(document.getElementById(div.id.replace("view", "data")).textContent);
  Plotly.newPlot(div, fig.data, fig.layout);
}});
</script>
</body></html>
"""


def write_report(path: Path, **kwargs) -> None:
    write_text(path, build_report(**kwargs))
