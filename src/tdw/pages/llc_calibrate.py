"""The llc-calibrate command: the LLC's SGLD hyperparameters over an ε × nβ grid on one checkpoint
(``tdw.analyzers.llc_calibrate``), written as one HDF5 file and an HTML figure:

    python -m tdw llc-calibrate results/modadd/p113_seed0 --epoch 600 --eps 1e-5,3e-5,1e-4 --nbeta n,batch
    python -m tdw llc-calibrate --config config/config.yaml --variant p113_seed0 --epoch 600 ...

The other parameters are the ``llc`` analyzer's (its defaults unless given).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tdw.analyzers.llc_calibrate import calibrate
from tdw.layout import VariantLayout


def _number_or_preset(text: str) -> float | str:
    return text if text in ("n", "batch") else float(text)


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
    from tdw.figures import llc_calibration
    from tdw.figures.render import write_html
    from tdw.params import resolve_params

    art = {k: v[0] for k, v in data.items()} | {"checkpoint_epoch": np.int64(args.epoch)}
    fig = llc_calibration.build(
        {"artifact": art}, resolve_params(llc_calibration.PARAMS, {}, "llc_calibration"), "LLC calibration"
    )
    write_html(fig, stem.with_suffix(".html"))
    print(f"wrote {stem}.h5 and {stem}.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
