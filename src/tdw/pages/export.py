"""A report as a static bundle to share: the interactive HTML plus a PNG and an SVG of every
view (through one browser session) and an index.md that works without a browser.

    python -m tdw export results/modadd/p113_seed0 --report default --out share/p113_seed0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tdw.config import FAMILIES_DIR, load_family
from tdw.figures.render import export_static
from tdw.figures.views import load_view
from tdw.io.atomic import write_json, write_text
from tdw.io.provenance import provenance
from tdw.io.variant import read_metadata_json
from tdw.layout import VariantLayout
from tdw.pages.report import write_report
from tdw.pages.report_spec import report_title, variant_report


def export_bundle(variant_dir: Path, report: str, out: Path, families: Path = FAMILIES_DIR) -> list[Path]:
    """Write ``out/report.html``, ``out/<n>_<figure>.{png,svg}``, ``out/index.md`` and
    ``out/provenance.json``; returns the files written."""
    variant_dir, out = Path(variant_dir), Path(out)
    meta = read_metadata_json(VariantLayout.at(variant_dir).metadata)
    family = meta["family"]
    spec, views = variant_report(variant_dir, family, load_family(family, str(families)).spec, families, report)
    written = [out / "report.html"]
    write_report(written[0], spec=spec, variant=meta["variant"], family=family, views=views, metadata=meta)
    figs, paths, lines = [], [], []
    title = report_title(spec, family, meta["variant"])
    lines.append(f"# {title}\n\nInteractive version: [report.html](report.html) (works offline).\n")
    for n, v in enumerate(views):
        fig = load_view(v["figure"], v["source"], v["inputs"], v["params"], v["title"]).figure
        stem = f"{n:02d}_{v['figure']}"
        for ext in ("png", "svg"):
            figs.append(fig)
            paths.append(out / f"{stem}.{ext}")
        lines.append(f"## {v['title']}\n\n![{v['title']}]({stem}.png) ([SVG]({stem}.svg))\n")
    export_static(figs, paths)
    written += paths
    write_text(out / "index.md", "\n".join(lines))
    write_json(
        out / "provenance.json",
        provenance()
        | {
            "variant_dir": str(variant_dir),
            "report": report,
            "views": [{k: v[k] for k in ("figure", "title", "params")} for v in views],
        },
    )
    return written + [out / "index.md", out / "provenance.json"]


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tdw export", description="Export a variant's report as a static bundle.")
    ap.add_argument("variant_dir")
    ap.add_argument("--report", default="default")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for path in export_bundle(Path(args.variant_dir), args.report, Path(args.out)):
        print(path)


if __name__ == "__main__":
    main()
