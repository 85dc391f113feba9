"""Shared by the report tests: build a report for a variant folder from a spec dict."""

import json
from pathlib import Path

from tdw.config import load_family
from tdw.io.variant import read_metadata_json
from tdw.layout import VariantLayout
from tdw.pages.report import write_report
from tdw.pages.report_spec import load_report_spec
from tdw.pages.report_spec import view_inputs as report_view_inputs

ROOT = Path(__file__).resolve().parents[1]


def family_figures() -> dict:
    return load_family("modadd", str(ROOT / "families")).spec["figures"]


def view_inputs(variant: Path, source: str) -> dict:
    return report_view_inputs(variant, source, "full")


def make_report(variant: Path, spec: dict, out: Path) -> Path:
    spec_file = out.with_suffix(".json")
    spec_file.write_text(json.dumps(spec))
    figures = family_figures()
    resolved = load_report_spec(spec_file, figures, figures)
    views = [v | {"inputs": view_inputs(variant, v["source"])} for v in resolved["views"]]
    meta = read_metadata_json(VariantLayout.at(variant).metadata)
    write_report(out, spec=resolved, variant=variant.name, family="modadd", views=views, metadata=meta)
    return out
