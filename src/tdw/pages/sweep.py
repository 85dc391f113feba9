"""The sweep page: how grokking depends on each swept parameter. One offline HTML file
(plotly.js embedded once) per family and sweep file: each measure of the sweep file against
each swept parameter (seeds as spread: every seed a point, the mean a line with min/max
bars), the loss curves of all variants coloured by the swept value (a menu chooses the
parameter) with one epoch cursor, and the table behind each plot as a CSV download built
in the page (a Blob URL: works offline). Swept parameters come from the variants'
config.json files (``tdw.pages.sweep_data``). Text from files is always HTML-escaped."""

from __future__ import annotations

import html
from pathlib import Path

import h5py
import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

from tdw.figures.dimensionality import text
from tdw.figures.epochs import overlaid_loss_layout
from tdw.figures.views import safe_json
from tdw.io.atomic import write_text
from tdw.io.history import read_history
from tdw.io.provenance import provenance
from tdw.pages import sweep_data as sd
from tdw.pages.report import template

NOT_REACHED = "not reached"


def _numeric(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _axis_type(values: list) -> str:
    if not _numeric(values):
        return "category"
    lo, hi = min(values), max(values)
    return "log" if lo > 0 and hi / lo >= 100 else "linear"


def _x(value: object, kind: str) -> object:
    return value if kind != "category" else str(value)


def variant_values(spec: dict, variant: dict) -> dict:
    """One variant's measures (name -> number or None) and, per transitions boundary, its
    checkpoint interval (``"<name>_lo"``/``"_hi"``). ``variant``: ``{history, metadata,
    artifacts: {analyzer: path}}``."""
    th = spec["thresholds"]
    hist = read_history(variant["history"])
    meta = variant["metadata"]
    out = sd.history_measures(hist, meta["final"], th["memorise"], th["generalise"])
    out["stop_epoch"] = (meta.get("early_stop") or {}).get("stop_epoch")  # None: it did not stop early
    values: dict = {}
    for m in spec["measures"]:
        if m["source"] == "history":
            values[m["name"]] = out[m["name"]]
            continue
        path = variant["artifacts"][m["source"]]
        with h5py.File(path, "r") as fh:
            if "dataset" not in m:  # a transitions boundary
                row = dict(zip(text(fh["boundary"][()]), range(len(fh["boundary"])), strict=True))[m["name"]]
                epoch = float(fh["boundary_epoch"][row])
                values[m["name"]] = None if np.isnan(epoch) else epoch
                values[f"{m['name']}_lo"], values[f"{m['name']}_hi"] = (
                    (int(fh[k][row]) for k in ("boundary_lo", "boundary_hi")) if values[m["name"]] is not None else (None, None)
                )
                continue
            epochs = fh["epoch"][()] if "epoch" in fh else None
            for key, dataset in ((m["name"], m["dataset"]), (f"{m['name']}_error", m.get("error"))):
                if dataset is None:
                    continue
                if dataset not in fh:
                    raise ValueError(f"{path}: no dataset {dataset!r} (measure {m['name']!r}); datasets: {sorted(fh)}")
                dims = fh[dataset].attrs.get("dims", "")
                dims = dims.decode() if isinstance(dims, bytes) else str(dims)
                where = f"{path}: dataset {dataset!r}"
                values[key] = sd.artifact_value(fh[dataset][()], dims, m["at"], m["reduce"], where, epochs)
    return values


def measure_table(m: dict, axes: list[str], fields: dict, values: dict) -> list[list]:
    """Header, then one row per variant: its swept values, seeds and the measure ("not
    reached" where it has none), with the checkpoint interval of a transitions boundary."""
    spread = sd.spread_fields(fields)
    interval = m["source"] == "transitions" and "dataset" not in m
    error = [f"{m['name']}_error"] if m.get("error") else []
    head = ["variant", *axes, *spread, m["name"], *([f"{m['name']}_lo", f"{m['name']}_hi"] if interval else []), *error]
    rows = [head]
    for name, f in fields.items():
        v = values[name]
        cells = [v[m["name"]] if v[m["name"]] is not None else NOT_REACHED]
        if interval:
            cells += [v[f"{m['name']}_lo"], v[f"{m['name']}_hi"]]
        cells += [v[e] for e in error]
        rows.append([name, *(_cell(f.get(a)) for a in axes), *(f.get(s) for s in spread), *cells])
    return rows


def _cell(value: object) -> object:
    return " ".join(str(x) for x in value) if isinstance(value, tuple) else value


def measure_figure(m: dict, axis: str | None, axes: list[str], fields: dict, values: dict) -> go.Figure:
    """The measure against ``axis`` (``None``: no swept parameter, one point), one trace
    pair (seeds, mean with min/max) per combination of the other swept values."""
    xs = [fields[n].get(axis) for n in fields] if axis else ["all"]
    kind = _axis_type(xs) if axis else "category"
    others = [a for a in axes if a != axis]
    by_other: dict[tuple, list[str]] = {}
    for name in fields:
        by_other.setdefault(sd.group_key(fields[name], others), []).append(name)
    fig = go.Figure()
    for i, (okey, names) in enumerate(sorted(by_other.items(), key=lambda kv: str(kv[0]))):
        color = qualitative.Plotly[i % len(qualitative.Plotly)]
        label = html.escape(", ".join(f"{a}={_cell(v)}" for a, v in zip(others, okey, strict=True)) or m["name"])
        sub = {n: fields[n] for n in names}
        points = sd.grouped(sub, {n: values[n][m["name"]] for n in names}, [axis] if axis else [])
        seeds = [(p["key"], n, v) for p in points for n, v in zip(p["variants"], p["values"], strict=True) if v is not None]
        # the measure's own error (the LLC's std over chains) on each seed's point; NaN: no bar
        bars = [values[n].get(f"{m['name']}_error") for _, n, _ in seeds] if m.get("error") else None
        fig.add_trace(
            go.Scatter(
                x=[_x(k[0], kind) if axis else "all" for k, _, _ in seeds],
                y=[v for _, _, v in seeds],
                text=[html.escape(n) for _, n, _ in seeds],
                error_y={"type": "data", "array": [np.nan if b is None else b for b in bars]} if bars else None,
                mode="markers",
                marker={"color": color, "size": 7, "opacity": 0.6},
                name=f"{label}: seeds" + (f" (bars: {m['error']})" if bars else ""),
                legendgroup=label,
                hovertemplate="%{text}<br>%{y}<extra></extra>",
            )
        )
        mean = [p for p in points if p["mean"] is not None]
        fig.add_trace(
            go.Scatter(
                x=[_x(p["key"][0], kind) if axis else "all" for p in mean],
                y=[p["mean"] for p in mean],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [p["max"] - p["mean"] for p in mean],
                    "arrayminus": [p["mean"] - p["min"] for p in mean],
                },
                text=[f"{p['reached']} of {p['n']} seeds reached" for p in mean],
                mode="lines+markers",
                line={"color": color},
                name=f"{label}: mean (bars: min to max)",
                legendgroup=label,
                hovertemplate="mean %{y}<br>%{text}<extra></extra>",
            )
        )
    missing = [n for n in fields if values[n][m["name"]] is None]
    if missing:  # said, not plotted: a variant that never got there has no number
        fig.add_annotation(
            text=html.escape(f"{NOT_REACHED}: {', '.join(missing)}"),
            xref="paper",
            yref="paper",
            x=0,
            y=1.0,
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
            font={"size": 11, "color": "#a33"},
        )
    fig.update_layout(
        title=html.escape(m["label"]),
        xaxis_title=html.escape(axis or "all variants"),
        yaxis_title=html.escape(m["name"]),
        height=380,
    )
    fig.update_xaxes(type=kind)
    if m["name"].startswith("final_") and m["name"].endswith("_loss"):
        fig.update_yaxes(type="log", exponentformat="power")
    return fig


def _colours(fields: dict, axis: str | None) -> dict[str, str]:
    """Variant -> colour by its value of ``axis``: a Viridis scale over numeric values (log
    spaced where the axis is), a qualitative palette over others."""
    if axis is None:
        return {n: qualitative.Plotly[i % 10] for i, n in enumerate(fields)}
    values = [fields[n].get(axis) for n in fields]
    distinct = sorted(set(values), key=lambda v: (str(type(v)), v if _numeric([v]) else str(v)))
    if _numeric(values) and len(distinct) > 1:
        scale = np.log10(values) if _axis_type(values) == "log" else np.asarray(values, dtype=float)
        frac = (scale - scale.min()) / (scale.max() - scale.min())
        return dict(zip(fields, sample_colorscale("Viridis", list(frac * 0.9)), strict=True))
    return {n: qualitative.Plotly[distinct.index(v) % 10] for n, v in zip(fields, values, strict=True)}


def loss_figure(histories: dict, fields: dict, axes: list[str]) -> go.Figure:
    """Train (solid) and test (dashed) loss of every variant, coloured by the first swept
    parameter; a menu colours by another."""
    menu: list[str | None] = [*axes] or [None]  # no swept axis: one colouring, by variant
    colours = {a: _colours(fields, a) for a in menu}
    first = colours[menu[0]]
    fig = go.Figure()
    order = []
    for name, h in histories.items():
        for split, dash in (("train", "solid"), ("test", "dash")):
            order.append(name)
            swept = ", ".join(f"{a}={_cell(fields[name].get(a))}" for a in axes)
            fig.add_trace(
                go.Scatter(
                    x=h[f"{split}_epoch"],
                    y=h[f"{split}_loss"],
                    name=html.escape(f"{name} {split}"),
                    legendgroup=html.escape(name),
                    mode="lines",
                    line={"color": first[name], "dash": dash, "width": 1.5},
                    hovertemplate=html.escape(f"{name} {split} ({swept})") + "<br>epoch %{x}<br>loss %{y:.3e}<extra></extra>",
                )
            )
    buttons = [
        {"label": html.escape(f"colour by {a}"), "method": "restyle", "args": [{"line.color": [colours[a][n] for n in order]}]}
        for a in axes
    ]
    overlaid_loss_layout(
        fig,
        "loss curves (solid: train, dashed: test), coloured by the swept value",
        updatemenus=[{"buttons": buttons, "x": 1.0, "y": 1.15, "xanchor": "right"}] if len(buttons) > 1 else [],
    )
    return fig


SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById("tdw-data").textContent);
  function cell(c) {
    const s = c === null ? "" : String(c);
    return /[",\\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  document.querySelectorAll("a.tdw-csv").forEach(function (a) {
    const rows = data.tables[Number(a.dataset.table)];
    const csv = rows.map(function (r) { return r.map(cell).join(","); }).join("\\n") + "\\n";
    a.href = URL.createObjectURL(new Blob([csv], {type: "text/csv"}));
  });
  const slider = document.getElementById("tdw-sweep-cursor");
  function cursor() {
    const epoch = data.epochs[Number(slider.value)];
    document.getElementById("tdw-sweep-epoch").textContent = "epoch " + epoch;
    return Plotly.relayout("tdw-sweep-loss", {shapes: [{type: "line", x0: epoch, x1: epoch, yref: "paper", y0: 0, y1: 1,
      line: {color: "#444", width: 1, dash: "dot"}}]});
  }
  window.tdwSweep = Promise.all(data.figures.map(function (f, i) {
    return Plotly.newPlot(i === 0 ? "tdw-sweep-loss" : "tdw-sweep-" + i, f.data, f.layout, {displaylogo: false});
  })).then(cursor);
  slider.addEventListener("input", cursor);
})();
"""


def _grid(rows: list[list]) -> str:
    def row(cells: list, tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(str(_cell(c)))}</{tag}>" for c in cells) + "</tr>"

    return "<table class='tdw-info'>" + row(rows[0], "th") + "".join(row(r, "td") for r in rows[1:]) + "</table>"


def _overview(spec: dict, axes: list[str], fields: dict, values: dict, keys: dict) -> list[list]:
    """Header, then per variant: swept values, seeds, every measure, the key frequencies."""
    spread = sd.spread_fields(fields)
    head = ["variant", *axes, *spread, *(m["name"] for m in spec["measures"]), *(["key frequencies"] if keys else [])]
    rows = [head]
    for n, f in fields.items():
        ms = [NOT_REACHED if values[n][m["name"]] is None else _short(values[n][m["name"]]) for m in spec["measures"]]
        rows.append([n, *(f.get(a) for a in axes), *(f.get(s) for s in spread), *ms, *([keys.get(n, "")] if keys else [])])
    return rows


def _short(value: float) -> object:
    return int(value) if float(value).is_integer() and abs(value) < 1e9 else f"{value:.4g}"


def _key_frequencies(variants: dict[str, dict]) -> dict[str, str]:
    """Variant -> its final key frequencies ("2, 5"), where the page reads its
    embedding_frequencies artifact."""
    keys = {}
    for n, v in variants.items():
        if "embedding_frequencies" in v["artifacts"]:
            with h5py.File(v["artifacts"]["embedding_frequencies"], "r") as fh:
                keys[n] = ", ".join(str(int(k)) for k in fh["key_frequencies"][()])
    return keys


def _plots(spec: dict, axes: list[str], fields: dict, values: dict, histories: dict) -> tuple[list, list, list[str]]:
    """The figures (loss curves first, then each measure against each axis), the table
    behind each measure, and the HTML of each measure plot with its CSV link."""
    figures, tables, sections = [loss_figure(histories, fields, axes)], [], []
    for t, m in enumerate(spec["measures"]):
        tables.append(measure_table(m, axes, fields, values))
        menu: list[str | None] = [*axes] or [None]
        for axis in menu:
            sections.append(
                f'<div id="tdw-sweep-{len(figures)}" class="tdw-view"></div>'
                f'<a class="tdw-csv" data-table="{t}" download="{html.escape(m["name"])}.csv">'
                f"download the table behind this plot (CSV)</a>"
            )
            figures.append(measure_figure(m, axis, axes, fields, values))
    return figures, tables, sections


def _with_stop_epoch(spec: dict, variants: dict[str, dict]) -> dict:
    """The spec with the ``stop_epoch`` measure added where some variant trained with early
    stopping and the sweep file does not list it."""
    from tdw.pages.sweep_spec import BUILTIN

    if any(m["name"] == "stop_epoch" for m in spec["measures"]) or not any(
        v["metadata"].get("early_stop") for v in variants.values()
    ):
        return spec
    label, source = BUILTIN["stop_epoch"]
    return spec | {"measures": [*spec["measures"], {"name": "stop_epoch", "label": label, "source": source, "optional": False}]}


def build_sweep(spec: dict, family: str, name: str, variants: dict[str, dict]) -> str:
    """``spec`` from ``tdw.pages.sweep_spec.load_sweep_spec``; ``variants``: ``{name:
    {"config": dict, "history": path, "metadata": dict, "artifacts": {analyzer: path}}}``."""
    from plotly.offline import get_plotlyjs

    spec = _with_stop_epoch(spec, variants)
    fields = {n: sd.sweep_fields(v["config"]) for n, v in variants.items()}
    axes = sd.swept_axes(fields)
    values = {n: variant_values(spec, v) for n, v in variants.items()}
    histories = {n: read_history(v["history"]) for n, v in variants.items()}
    keys = _key_frequencies(variants)
    figures, tables, sections = _plots(spec, axes, fields, values, histories)
    epochs = sorted({int(e) for h in histories.values() for e in h["train_epoch"]})
    title = spec["title"].replace("{family}", family).replace("{sweep}", name)
    record = provenance() | {
        "family": family,
        "sweep": name,
        "axes": axes,
        "thresholds": spec["thresholds"],
        "variants": {
            n: {"history": str(v["history"])} | {a: str(p) for a, p in v["artifacts"].items()} for n, v in variants.items()
        },
    }
    payload = {"figures": [f.to_plotly_json() for f in figures], "tables": tables, "epochs": epochs, "axes": axes}
    swept = ", ".join(axes) if axes else "none (the variants differ only in their seeds)"
    th = spec["thresholds"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{template("report.css")}</style><script>{get_plotlyjs()}</script></head>
<body><h1>{html.escape(title)}</h1><p class="tdw-description">{html.escape(spec["description"])}</p>
<p id="tdw-sweep-axes">swept: {html.escape(swept)}; memorised: train loss below {th["memorise"]:g};
generalised: test loss below {th["generalise"]:g}</p>
<div style="overflow-x: auto">{_grid(_overview(spec, axes, fields, values, keys))}</div>
<div id="tdw-controls"><label for="tdw-sweep-cursor">epoch cursor</label>
<input type="range" id="tdw-sweep-cursor" min="0" max="{len(epochs) - 1}" step="1" value="{len(epochs) - 1}">
<span id="tdw-sweep-epoch"></span></div>
<div id="tdw-sweep-loss" class="tdw-view"></div>
{"".join(sections)}
<footer>made by tdw {html.escape(str(record["git_commit"]))} on {html.escape(str(record["created"]))}</footer>
<script type="application/json" id="tdw-provenance">{safe_json(record)}</script>
<script type="application/json" id="tdw-data">{_json(payload)}</script>
<script>{SCRIPT}</script></body></html>
"""


def _json(payload: dict) -> str:
    """Plotly's JSON (numpy arrays included), safe inside a <script> element."""
    import plotly.io

    return plotly.io.to_json(payload, validate=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_sweep(path: Path, **kwargs) -> None:
    write_text(path, build_sweep(**kwargs))
