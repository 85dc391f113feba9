"""Sweep comparison: one offline page across the variants of one or several families: loss curves overlaid,
final losses side by side, key frequencies per variant (from the embedding_frequencies
artifacts) and, where a ``transitions`` artifact exists, the transitions it detected (phase
boundaries and jumps, as the checkpoint intervals they lie in)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from tdw.analyzers.transitions import BOUNDARIES
from tdw.figures.dimensionality import text
from tdw.figures.epochs import overlaid_loss_layout
from tdw.figures.views import safe_json
from tdw.io.atomic import write_text
from tdw.io.h5 import load_artifact
from tdw.io.history import read_history
from tdw.io.provenance import provenance
from tdw.pages.report import template

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")


def loss_overlay(histories: dict[str, dict]) -> go.Figure:
    """Train (solid) and test (dashed) loss of every variant, one colour per variant."""
    fig = go.Figure()
    for i, (name, h) in enumerate(histories.items()):
        color = PALETTE[i % len(PALETTE)]
        for split, dash in (("train", "solid"), ("test", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=h[f"{split}_epoch"],
                    y=h[f"{split}_loss"],
                    name=f"{name} {split}",
                    legendgroup=name,
                    mode="lines",
                    line={"color": color, "dash": dash, "width": 1.5},
                    hovertemplate=f"{html.escape(name)} {split}<br>epoch %{{x}}<br>loss %{{y:.3e}}<extra></extra>",
                )
            )
    return overlaid_loss_layout(fig, "loss curves (solid: train, dashed: test)")


def final_losses(finals: dict[str, dict]) -> go.Figure:
    names = list(finals)
    fig = go.Figure()
    for split, color in (("train", "#1f77b4"), ("test", "#d62728")):
        fig.add_trace(go.Bar(x=names, y=[finals[n][f"{split}_loss"] for n in names], name=split, marker_color=color))
    fig.update_layout(
        title="final losses", barmode="group", height=380, yaxis_title="loss", legend={"orientation": "h", "y": 1.08}
    )
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def key_frequencies(artifacts: dict[str, dict]) -> go.Figure:
    """Final embedding norm per frequency, one row per variant; key frequencies marked."""
    names = list(artifacts)
    width = max(len(a["frequency"]) for a in artifacts.values())
    z = np.full((len(names), width), np.nan)
    xs, ys = [], []
    for row, name in enumerate(names):
        norms = artifacts[name]["frequency_norm"][-1]
        z[row, : len(norms)] = norms / norms.max()
        xs += [int(k) for k in artifacts[name]["key_frequencies"]]
        ys += [name] * len(artifacts[name]["key_frequencies"])
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=np.arange(1, width + 1),
            y=names,
            colorscale="Greys",
            colorbar={"title": "norm / max", "thickness": 12},
            hovertemplate="%{y}<br>k = %{x}<br>norm / max %{z:.2f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            marker={"symbol": "circle-open", "color": "#e67e22", "size": 10},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        title="final embedding norm per frequency (circles: key frequencies)",
        xaxis_title="frequency k",
        height=160 + 40 * len(names),
    )
    return fig


def _grid(rows: list[tuple]) -> str:
    """An HTML table whose first row is the header; every cell escaped."""

    def row(cells: tuple, tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"

    return "<table class='tdw-info'>" + row(rows[0], "th") + "".join(row(r, "td") for r in rows[1:]) + "</table>"


def transition_rows(transitions: dict[str, dict]) -> list[tuple]:
    """Header, then per variant: each grokking phase boundary as the interval between the
    checkpoints around it ("not found" where absent) and the detected jumps (series: interval)."""
    rows: list[tuple] = [("variant", *(b.replace("_", " ") for b in BOUNDARIES), "jumps")]
    for name, art in transitions.items():
        found = dict(zip(text(art["boundary"]), zip(art["boundary_lo"], art["boundary_hi"], strict=True), strict=True))
        bounds = [
            f"{int(found[b][0])} to {int(found[b][1])}" if b in found and found[b][0] >= 0 else "not found" for b in BOUNDARIES
        ]
        jumps = zip(text(art["jump_series"]), art["jump_lo"], art["jump_hi"], strict=True)
        rows.append((name, *bounds, "; ".join(f"{s}: {int(lo)} to {int(hi)}" for s, lo, hi in jumps) or "none"))
    return rows


def _summary_rows(variants: dict[str, dict], finals: dict[str, dict], arts: dict[str, dict]) -> list[tuple]:
    """Header, then per variant: its final epoch and losses and key frequencies; its family where
    the variants are of several families, and why it stopped where some stopped early."""
    families = {n: v["metadata"]["family"] for n, v in variants.items()}
    several = len(set(families.values())) > 1
    stops = {n: v["metadata"].get("early_stop") for n, v in variants.items()}
    early = any(stops.values())
    head = ("variant", "final epoch", "final train loss", "final test loss", "key frequencies")
    rows = [("family",) * several + head + ("early stop",) * early]
    for n in variants:
        keys = ", ".join(str(int(k)) for k in arts[n]["key_frequencies"]) if n in arts else "(no artifact)"
        row = (n, finals[n]["epoch"], f"{finals[n]['train_loss']:.3e}", f"{finals[n]['test_loss']:.3e}", keys)
        stop = stops[n]["reason"] if stops[n] else "off"
        rows.append((families[n],) * several + row + (stop,) * early)
    return rows


def build_compare(title: str, description: str, variants: dict[str, dict]) -> str:
    """variants: ``{name: {"history": path, "metadata": dict, "embedding": path | None,
    "transitions": path | None}}``."""
    from plotly.offline import get_plotlyjs

    histories = {n: read_history(v["history"]) for n, v in variants.items()}
    finals = {n: v["metadata"]["final"] for n, v in variants.items()}
    figures = [loss_overlay(histories), final_losses(finals)]
    arts = {n: load_artifact(v["embedding"]) for n, v in variants.items() if v.get("embedding")}
    rows = _summary_rows(variants, finals, arts)
    if arts:
        figures.append(key_frequencies(arts))
    transitions = {n: load_artifact(v["transitions"]) for n, v in variants.items() if v.get("transitions")}
    table = _grid(rows)
    if transitions:
        table += "<h2>transition epochs</h2>" + _grid(transition_rows(transitions))
    record = provenance() | {
        "variants": {n: {k: str(v[k]) for k in ("history", "embedding", "transitions") if v.get(k)} for n, v in variants.items()}
    }
    divs = "".join(f'<div id="tdw-cmp-{i}" class="tdw-view"></div>' for i in range(len(figures)))
    data = (
        ("[" + ",".join(f.to_json() for f in figures) + "]")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{template("report.css")}</style><script>{get_plotlyjs()}</script></head>
<body><h1>{html.escape(title)}</h1><p class="tdw-description">{html.escape(description)}</p>
{table}{divs}
<footer>made by tdw {html.escape(str(record["git_commit"]))} on {html.escape(str(record["created"]))}</footer>
<script type="application/json" id="tdw-provenance">{safe_json(record)}</script>
<script type="application/json" id="tdw-data">{data}</script>
<script>
window.tdwCompare = Promise.all(JSON.parse(document.getElementById("tdw-data").textContent).map(function (f, i) {{
  return Plotly.newPlot("tdw-cmp-" + i, f.data, f.layout, {{displaylogo: false}});
}}));
</script></body></html>
"""


def write_compare(path: Path, **kwargs) -> None:
    write_text(path, build_compare(**kwargs))
