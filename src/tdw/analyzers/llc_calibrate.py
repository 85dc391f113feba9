"""Choosing the LLC's SGLD hyperparameters: estimates of one checkpoint over an ε × nβ grid,
with every chain's loss and distance traces, written as one HDF5 file and an HTML figure.

    python -m tdw llc-calibrate results/modadd/p113_seed0 --epoch 600 --eps 1e-5,3e-5,1e-4 --nbeta n,batch
    python -m tdw llc-calibrate --config config/config.yaml --variant p113_seed0 --epoch 600 ...

A good ε is the largest whose loss traces level off (no upward drift, no NaN) with a MALA
acceptance well above zero; the estimate should then change little with ε. The other
parameters are the ``llc`` analyzer's (its defaults unless given).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tdw.layout import VariantLayout


def _number_or_preset(text: str) -> float | str:
    return text if text in ("n", "batch") else float(text)


def calibrate(ckpt: Path, eps: list[float], nbetas: list[float | str], given: dict) -> dict[str, tuple[np.ndarray, str]]:
    """The grid's estimates and traces: datasets for ``write_h5`` (axes epsilon, nbeta, chain, draw)."""
    from tdw.analyzers import llc
    from tdw.analyzers.runner import checkpoint_view
    from tdw.params import resolve_params

    view = checkpoint_view(ckpt, None)
    rows = []
    for e in eps:
        for nb in nbetas:
            params = resolve_params(llc.PARAMS, given | {"epsilon": e, "nbeta": nb}, "llc-calibrate")
            est, s = llc.estimate(view, params)
            rows.append((est, s))
            print(
                f"eps {e:.3g} nbeta {s.nbeta:.4g}: llc {est.llc_mean:.4g} ± {est.llc_std:.2g}, "
                f"acceptance {np.nanmean(est.mala_acceptance):.2f}, {int(est.diverged.sum())} diverged",
                flush=True,
            )
    shape = (len(eps), len(nbetas))

    def grid(get, dims: str) -> tuple[np.ndarray, str]:
        return np.stack([get(est, s) for est, s in rows]).reshape(*shape, *np.shape(get(*rows[0]))), dims

    s0 = rows[0][1]
    return {
        "epsilon": (np.array(eps), "epsilon"),
        "nbeta": (np.array([str(nb) for nb in nbetas], dtype="S"), "nbeta"),
        "nbeta_value": grid(lambda est, s: s.nbeta, "epsilon nbeta"),
        "llc_mean": grid(lambda est, s: est.llc_mean, "epsilon nbeta"),
        "llc_std": grid(lambda est, s: est.llc_std, "epsilon nbeta"),
        "llc": grid(lambda est, s: est.llc, "epsilon nbeta chain"),
        "loss_trace": grid(lambda est, s: est.loss_trace, "epsilon nbeta chain draw"),
        "distance_trace": grid(lambda est, s: est.distance_trace, "epsilon nbeta chain draw"),
        "mala_acceptance": grid(lambda est, s: est.mala_acceptance, "epsilon nbeta chain"),
        "diverged": grid(lambda est, s: est.diverged, "epsilon nbeta chain"),
        "init_loss": (np.float64(rows[0][0].init_loss), ""),
        "draw": (s0.burn_in + s0.steps_between_draws * np.arange(s0.draws), "draw"),
    }


def figure(data: dict, title: str):
    """Loss traces (top row) and distance traces (bottom row), one column per (ε, nβ)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    eps, nbetas = data["epsilon"], [n.decode() if isinstance(n, bytes) else str(n) for n in data["nbeta"]]
    cells = [(i, j) for i in range(len(eps)) for j in range(len(nbetas))]
    titles = [
        f"ε {eps[i]:.2g}, nβ {nbetas[j]}: λ̂ {data['llc_mean'][i, j]:.3g} ± {data['llc_std'][i, j]:.2g}, "
        f"acc {np.nanmean(data['mala_acceptance'][i, j]):.2f}"
        for i, j in cells
    ]
    fig = make_subplots(rows=2, cols=len(cells), subplot_titles=titles + [""] * len(cells), vertical_spacing=0.12)
    for col, (i, j) in enumerate(cells, start=1):
        for c in range(data["loss_trace"].shape[2]):
            color = "#d62728" if data["diverged"][i, j, c] else "#1f77b4"
            for row, key in ((1, "loss_trace"), (2, "distance_trace")):
                fig.add_trace(
                    go.Scatter(
                        x=data["draw"], y=data[key][i, j, c], mode="lines", line={"color": color, "width": 1}, showlegend=False
                    ),
                    row=row,
                    col=col,
                )
        fig.add_hline(y=float(data["init_loss"]), line={"dash": "dot", "color": "#555"}, row=1, col=col)
    fig.update_yaxes(title_text="batch loss", type="log", row=1, col=1)
    fig.update_yaxes(title_text="||w - w*||", row=2, col=1)
    fig.update_xaxes(title_text="step")
    fig.update_annotations(font_size=10)
    fig.update_layout(title=title, height=620, width=max(600, 330 * len(cells)))
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tdw llc-calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("variant_dir", nargs="?", help="results/<family>/<variant> (or give --config and --variant)")
    ap.add_argument("--config", help="a config file: the variant's folder under its results root")
    ap.add_argument("--variant", help="the variant's name in --config")
    ap.add_argument("--epoch", type=int, required=True, help="the checkpoint's epoch")
    ap.add_argument("--eps", required=True, help="comma-separated step sizes")
    ap.add_argument("--nbeta", default="n,batch", help="comma-separated nβ: numbers or the presets n, batch")
    for name, kind in (("gamma", float), ("chains", int), ("draws", int), ("burn_in", int), ("batch_size", int), ("seed", int)):
        ap.add_argument("--" + name.replace("_", "-"), type=kind, help=f"the llc analyzer's {name} (default: its default)")
    ap.add_argument("--out", help="output folder (default: <variant>/figures)")
    args = ap.parse_args(argv)
    if args.config:
        from tdw.config import load

        if not args.variant:
            ap.error("--config needs --variant")
        wb = load(args.config)
        layout = VariantLayout(wb.results, wb.family.name, wb.variant(args.variant).name)
    elif args.variant_dir:
        layout = VariantLayout.at(args.variant_dir)
    else:
        ap.error("give a variant folder, or --config and --variant")
    ckpt = layout.checkpoint(args.epoch)
    if not ckpt.exists():
        ap.error(f"{ckpt}: no checkpoint for epoch {args.epoch}")
    keys = ("gamma", "chains", "draws", "burn_in", "batch_size", "seed")
    given = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    eps = [float(e) for e in args.eps.split(",")]
    data = calibrate(ckpt, eps, [_number_or_preset(n) for n in args.nbeta.split(",")], given)
    out = Path(args.out) if args.out else layout.folder("figures")
    out.mkdir(parents=True, exist_ok=True)
    from tdw.io.h5 import write_h5
    from tdw.io.provenance import provenance

    stem = out / f"llc_calibration_epoch_{args.epoch:05d}"
    write_h5(stem.with_suffix(".h5"), data, {"checkpoint": str(ckpt), "params": given, "provenance": provenance()}, compress=True)
    from tdw.figures.render import write_html

    fig_data = {k: v[0] for k, v in data.items()}
    write_html(figure(fig_data, f"LLC calibration: {layout.variant}, epoch {args.epoch}"), stem.with_suffix(".html"))
    print(f"wrote {stem}.h5 and {stem}.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
