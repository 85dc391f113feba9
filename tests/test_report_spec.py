"""Report configurations: resolution of per-view parameters and errors on bad specs."""

import json

import pytest
from reporting import ROOT, family_figures

from tdw.config import ConfigError
from tdw.pages.report_spec import load_report_spec


def write(tmp_path, spec) -> str:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(spec) if not isinstance(spec, str) else spec)
    return path


def test_default_report_resolves_family_params():
    figs = family_figures()
    spec = load_report_spec(ROOT / "families/modadd/reports/default.json", figs, figs)
    assert [v["figure"] for v in spec["views"]] == list(figs)  # every view the family offers
    assert spec["views"][1]["params"] == figs["embedding_frequencies"]["params"]


def test_per_view_overrides(tmp_path):
    figs = family_figures()
    path = write(tmp_path, {"views": [{"figure": "embedding_frequencies", "title": "E", "params": {"colorscale": "Magma"}}]})
    view = load_report_spec(path, figs, figs)["views"][0]
    assert view["params"]["colorscale"] == "Magma"
    assert view["params"]["highlight_threshold"] == 0.3  # family default kept
    assert view["title"] == "E"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"views": ["nope"]}, "'views.0' ('nope'): unknown view"),
        ({"views": [{"figure": "loss_curves", "params": {"colour": "red"}}]}, "('loss_curves'): unknown parameter 'colour'"),
        ({"views": [{"figure": "loss_curves", "params": {"width": "big"}}]}, "parameter 'width': expected integer, not 'big'"),
        ({"views": []}, "at least one view"),
        ({"views": ["loss_curves"], "extra": 1}, "expected"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_specs_name_the_problem(tmp_path, spec, message):
    figs = family_figures()
    with pytest.raises(ConfigError) as err:
        load_report_spec(write(tmp_path, spec), figs, figs)
    assert message in str(err.value)


def test_view_whose_artifact_this_config_does_not_produce(tmp_path):
    family = family_figures()
    rendered = {"loss_curves": family["loss_curves"]}  # a config that runs no analyzer
    with pytest.raises(ConfigError, match="analyzer 'embedding_frequencies', which this config does not produce"):
        load_report_spec(write(tmp_path, {"views": ["embedding_frequencies"]}), rendered, family)


def test_dashboard_overrides_are_checked_by_type(synthetic_variant):
    """Per-view overrides from the dashboard or an export go through the same declared
    parameters: a wrong type stops before anything is drawn."""
    from tdw.config import FAMILIES_DIR, load_family
    from tdw.pages.report_spec import variant_report

    spec = load_family("modadd", str(FAMILIES_DIR)).spec
    _, views = variant_report(synthetic_variant, "modadd", spec, FAMILIES_DIR, "default", {"loss_curves": {"width": 700}})
    assert next(v for v in views if v["figure"] == "loss_curves")["params"]["width"] == 700
    with pytest.raises(ConfigError, match=r"view 'loss_curves': parameter 'width': expected integer, not 'big'"):
        variant_report(synthetic_variant, "modadd", spec, FAMILIES_DIR, "default", {"loss_curves": {"width": "big"}})
