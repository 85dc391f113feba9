"""The pages of every family kind in headless Chromium, from real tiny runs through Snakemake:
a grid task other than addition (modmul, relabelled by discrete log), the MLP model
(modadd_mlp) and the sequence family (induction), each with two variants (weight decay 0.1
and 1). Per kind: the variant's default report draws every view its config gives and the
slider moves each of them, with one view's values equal to its artifact; the comparison
page draws both variants' losses as their files record them; the sweep page plots the final
test loss against the swept weight decay and its CSV holds the same numbers; the dashboard
shows the variant's views and, for the family, the sweep knobs it declares.

One workflow run per kind, shared by the module's tests (all in one working directory, so
that one dashboard shows every family). The grid task runs by default; the MLP and the
sequence family, and the dashboard, are slow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from dashboard_server import serve_dashboard
from workflow_runs import run_snakemake

from tdw.config import load_family
from tdw.io.h5 import load_artifact
from tdw.io.history import read_history
from tdw.io.variant import read_metadata_json
from tdw.layout import RESULTS, FamilyLayout
from tdw.sweep import sweepable

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = [0, 4, 8]


@dataclass(frozen=True)
class Kind:
    family: str
    p: int
    views: tuple[str, ...]  # the default report's views under this run's analyzers
    analyzers: tuple[str, ...] | None = None  # None: every analyzer the family offers
    extra_train: tuple[tuple[str, object], ...] = ()

    @property
    def variants(self) -> list[str]:
        template = load_family(self.family, str(ROOT / "families")).spec["variant_name"]
        base = template.format(p=self.p, seed=0)
        # weight decay 1 is the family's default: no tag; the config's train fraction 0.5 (not the
        # family's 0.3) is tagged where the family declares it sweepable
        frac = "_frac0.5" if "train_frac" in sweepable(load_family(self.family, str(ROOT / "families"))) else ""
        return [f"{base}_wd0.1{frac}", f"{base}{frac}"]

    def config(self) -> dict:
        config = {
            "family": self.family,
            "sweep": {"p": [self.p], "seed": [0], "weight_decay": [0.1, 1.0]},
            "train": {"train_frac": 0.5, **dict(self.extra_train)},
            "checkpoints": EPOCHS,
        }
        if self.analyzers is not None:
            config["analyzers"] = list(self.analyzers)
        return config


KINDS = {
    "grid": Kind(
        "modmul",
        11,
        ("loss_curves", "embedding_frequencies", "neuron_activations", "neuron_clusters", "transitions"),
        analyzers=("embedding_frequencies", "neuron_activations", "neuron_clusters", "transitions"),
    ),
    "mlp": Kind(
        "modadd_mlp",
        11,
        ("loss_curves", "embedding_frequencies", "neuron_activations", "neuron_clusters", "dimensionality", "transitions")
        + ("geometry", "ablations", "weight_norms"),
    ),
    # The vocabulary must hold the characters of the family's prompt file (31, as tests/configs/tiny_induction.yaml).
    "sequence": Kind(
        "induction",
        31,
        ("loss_curves", "induction", "attention_offsets", "induction_loss", "head_ablations", "dimensionality")
        + ("transitions", "weight_norms"),
        extra_train=(("test_loss_every", 2),),
    ),
}
ALL_KINDS = [pytest.param("grid"), pytest.param("mlp", marks=pytest.mark.slow), pytest.param("sequence", marks=pytest.mark.slow)]


def family_files(workdir: Path, kind: Kind) -> FamilyLayout:
    return FamilyLayout(workdir / RESULTS, kind.family)


def run_kind(workdir: Path, kind: Kind) -> None:
    """The variants' default reports, the comparison page and the default sweep page (every
    family has one), and everything they read."""
    config = workdir / f"{kind.family}.yaml"
    config.write_text(yaml.safe_dump(kind.config(), sort_keys=False))
    files = FamilyLayout(RESULTS, kind.family)
    targets = [str(files.variant(v).report("default")) for v in kind.variants]
    targets += [str(files.compare("default")), str(files.sweep("default"))]
    done = run_snakemake(workdir, config, "--cores", "2", target_list=targets, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(working directory, run(kind) -> Kind): each kind's workflow run happens once, when a
    test first asks for it."""
    workdir = tmp_path_factory.mktemp("families")
    done: set[str] = set()

    def run(name: str) -> Kind:
        if name not in done:
            run_kind(workdir, KINDS[name])
            done.add(name)
        return KINDS[name]

    return workdir, run


def open_page(browser, path: Path, errors: list, **context):
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(path.as_uri())
    return ctx, page


VIEWS = """() => window.tdwReport.views.map(v => ({
  figure: v.figure, traces: v.div.data.length, drawn: v.div.querySelector('.main-svg') !== null,
  marks: v.marks.map(m => Number(m.el.dataset.epoch)), frames: !!v.frames, shown: v.shownFrame === undefined ? null : v.shownFrame,
  frame_of: v.frame_of}))"""


def move_slider(page, index: int) -> None:
    """Move the report's slider to ``index``, and wait until every view with frames has drawn
    the frame of that checkpoint (restyles are asynchronous) and the page has painted."""
    page.eval_on_selector("#tdw-slider", f"el => {{ el.value = {index}; el.dispatchEvent(new Event('input')); }}")
    page.wait_for_function(f"() => window.tdwReport.current() === {index}")
    page.wait_for_function(f"() => window.tdwReport.views.every(v => !v.frames || v.shownFrame === v.frame_of[{index}])")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def check_views_move(views: list[dict], epochs: list[int], index: int) -> None:
    """Every view follows the slider to checkpoint ``index``: its epoch indicators stand at that
    checkpoint's epoch, and a view with frames shows the frame of that checkpoint."""
    for v in views:
        assert v["marks"] or v["frames"], f"view {v['figure']} neither marks the epoch nor changes with it"
        assert v["marks"] == [epochs[index]] * len(v["marks"]), v
        if v["frames"]:
            assert v["shown"] == v["frame_of"][index], v


def trace_values(page, view: int, trace: int, key: str = "y") -> np.ndarray:
    """A trace's values (``y``; ``z``: rows) as Plotly drew them (``_fullData``: decoded, restyled)."""
    script = f"() => Array.from(window.tdwReport.views[{view}].div._fullData[{trace}].{key}, r => typeof r === 'number' ? r : Array.from(r))"
    return np.asarray(page.evaluate(script), dtype=np.float64)


@pytest.mark.parametrize("name", ALL_KINDS)
def test_default_report_draws_and_moves_every_view(browser, runs, name):
    workdir, run = runs
    kind = run(name)
    layout = family_files(workdir, kind).variant(kind.variants[0])
    epochs = [c["epoch"] for c in read_metadata_json(layout.metadata)["checkpoints"]]
    assert epochs == EPOCHS
    errors: list = []
    ctx, page = open_page(browser, layout.report("default"), errors, offline=True)
    page.evaluate("() => window.tdwReport.ready")
    views = page.evaluate(VIEWS)
    assert [v["figure"] for v in views] == list(kind.views)
    assert all(v["traces"] > 0 and v["drawn"] for v in views), views
    check_views_move(views, epochs, len(epochs) - 1)
    move_slider(page, 1)
    check_views_move(page.evaluate(VIEWS), epochs, 1)
    CHECK_VALUES[name](page, layout, kind, 1)
    assert errors == []
    ctx.close()


def check_grid_values(page, layout, kind: Kind, index: int) -> None:
    """modmul: the neuron-activation view shows, at the slider's checkpoint, the artifact's grid
    of the most varied selected neuron, on axes in log space (2 is the primitive root of 11)."""
    n = kind.views.index("neuron_activations")
    art = load_artifact(layout.artifact("full", "neuron_activations"))
    pos = int(np.argmax(art["grid"][-1].astype(np.float64).reshape(len(art["neuron"]), -1).std(1)))
    frame = list(art["grid_epoch"]).index(EPOCHS[index])
    shown = trace_values(page, n, 0, "z")
    assert shown.shape == (kind.p - 1, kind.p - 1)
    np.testing.assert_allclose(shown, art["grid"][frame, pos].astype(np.float64), atol=1e-3)
    assert not np.allclose(art["grid"][frame, pos], art["grid"][-1, pos], atol=1e-3)  # the slider changed the map
    cell = page.evaluate(f"() => Array.from(window.tdwReport.views[{n}].div._fullData[0].customdata[3][7])")
    assert cell == [2**3 % 11, 2**7 % 11]  # hover: the tokens a = 2^3, b = 2^7 of cell (i, j) = (3, 7)
    layout_json = page.evaluate(f"() => window.tdwReport.views[{n}].div.layout")
    assert layout_json["xaxis"]["title"]["text"] == "j = log_2 b (b = 2^j)"
    assert layout_json["yaxis"]["title"]["text"] == "i = log_2 a (a = 2^i)"


def check_mlp_values(page, layout, kind: Kind, index: int) -> None:
    """modadd_mlp: the embedding view's bar profile is the artifact's frequency norms at the
    slider's checkpoint."""
    n = kind.views.index("embedding_frequencies")
    norms = load_artifact(layout.artifact("full", "embedding_frequencies"))["frequency_norm"]
    np.testing.assert_allclose(trace_values(page, n, 1), norms[index], rtol=1e-4)
    assert not np.allclose(norms[index], norms[-1], rtol=1e-4)  # the slider changed the profile


def check_sequence_values(page, layout, kind: Kind, index: int) -> None:
    """induction: each head's induction and previous-token score lines are the artifact's."""
    n = kind.views.index("induction")
    art = load_artifact(layout.artifact("repeated", "induction"))
    names = page.evaluate(f"() => window.tdwReport.views[{n}].div.data.map(t => t.name)")
    layers, heads = art["induction_score"].shape[1:]
    for layer in range(layers):
        for head in range(heads):
            for key in ("induction_score", "previous_token_score"):
                t = names.index(f"L{layer}H{head} {key.split('_')[0]}")
                np.testing.assert_allclose(trace_values(page, n, t), art[key][:, layer, head], rtol=1e-5)


CHECK_VALUES = {"grid": check_grid_values, "mlp": check_mlp_values, "sequence": check_sequence_values}


@pytest.mark.parametrize("name", ALL_KINDS)
def test_comparison_page_draws_both_variants(browser, runs, name):
    workdir, run = runs
    kind = run(name)
    files = family_files(workdir, kind)
    errors: list = []
    ctx, page = open_page(browser, files.compare("default"), errors, offline=True)
    page.wait_for_function("() => document.getElementById('tdw-cmp-1').data !== undefined")
    names = page.evaluate("() => document.getElementById('tdw-cmp-0').data.map(t => t.name)")
    assert names == [f"{v} {split}" for v in kind.variants for split in ("train", "test")]
    for i, v in enumerate(kind.variants):
        history = read_history(files.variant(v).history)
        for j, split in enumerate(("train", "test")):
            xy = page.evaluate(
                f"() => {{ const t = document.getElementById('tdw-cmp-0')._fullData[{2 * i + j}]; return [Array.from(t.x), Array.from(t.y)]; }}"
            )
            np.testing.assert_array_equal(xy[0], history[f"{split}_epoch"])
            np.testing.assert_allclose(xy[1], history[f"{split}_loss"], rtol=1e-12)
    bars = page.evaluate("() => document.getElementById('tdw-cmp-1')._fullData.map(t => Array.from(t.y))")
    finals = [read_metadata_json(files.variant(v).metadata)["final"] for v in kind.variants]
    assert bars == [pytest.approx([f["train_loss"] for f in finals]), pytest.approx([f["test_loss"] for f in finals])]
    assert errors == []
    ctx.close()


@pytest.mark.parametrize("name", ALL_KINDS)
def test_sweep_page_plots_final_loss_against_weight_decay(browser, runs, name):
    workdir, run = runs
    kind = run(name)
    files = family_files(workdir, kind)
    finals = [read_metadata_json(files.variant(v).metadata)["final"]["test_loss"] for v in kind.variants]
    errors: list = []
    ctx, page = open_page(browser, files.sweep("default"), errors, offline=True, accept_downloads=True)
    page.evaluate("() => window.tdwSweep")
    assert page.text_content("#tdw-sweep-axes").startswith("swept: train.weight_decay;")
    tables = page.evaluate("() => JSON.parse(document.getElementById('tdw-data').textContent).tables")
    (t,) = [i for i, table in enumerate(tables) if table[0][-1] == "final_test_loss"]
    assert tables[t][0] == ["variant", "train.weight_decay", "seed", "final_test_loss"]
    assert [row[:3] for row in tables[t][1:]] == [[kind.variants[0], 0.1, 0], [kind.variants[1], 1.0, 0]]
    assert [row[3] for row in tables[t][1:]] == pytest.approx(finals)
    # one swept axis: measure t's plot is figure t + 1 (the loss curves are figure 0)
    seeds = page.evaluate(
        f"() => {{ const d = document.getElementById('tdw-sweep-{t + 1}')._fullData[0]; return [Array.from(d.x), Array.from(d.y)]; }}"
    )
    assert seeds[0] == [0.1, 1.0] and seeds[1] == pytest.approx(finals)
    assert page.evaluate("() => document.getElementById('tdw-sweep-loss').data.length") == 2 * len(kind.variants)
    with page.expect_download() as dl:
        page.click(f"a.tdw-csv[data-table='{t}']")
    lines = open(dl.value.path()).read().splitlines()
    assert dl.value.suggested_filename == "final_test_loss.csv"
    assert lines[0] == "variant,train.weight_decay,seed,final_test_loss"
    rows = [line.split(",") for line in lines[1:]]
    assert [r[:3] for r in rows] == [[kind.variants[0], "0.1", "0"], [kind.variants[1], "1", "0"]]
    assert [float(r[3]) for r in rows] == pytest.approx(finals)
    assert errors == []
    ctx.close()


@pytest.fixture(scope="module")
def dashboard(runs):
    workdir, _ = runs
    with serve_dashboard(workdir) as url:
        yield url


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def views_frame(page):
    for _ in range(400):
        frames = [f for f in page.frames if "/dashboard/views/" in f.url and not f.is_detached()]
        if frames:
            frames[0].wait_for_function("() => window.tdwReport !== undefined")
            frames[0].evaluate("() => window.tdwReport.ready")
            return frames[0]
        page.wait_for_timeout(50)
    raise AssertionError("no views frame")


def knob_field(name: str) -> str:
    """The Train tab's element id of sweep knob ``name``."""
    return {"p": "cfg-p", "seed": "cfg-seeds"}.get(name, f"sweep-{name}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["grid", "mlp", "sequence"])
def test_dashboard_shows_the_family(browser, runs, dashboard, name):
    """Views tab: the variant (listed after a refresh, its run having finished) shows its
    default report's views, which follow the slider. Train tab: choosing the family shows
    exactly the sweep knobs it declares sweepable, and p labelled as what it is in the family."""
    from tdw import sweep as sweeps
    from tdw.pages.dashboard.app import KNOBS

    workdir, run = runs
    kind = run(name)
    page = browser.new_page()
    page.goto(dashboard)
    page.get_by_role("tab", name="Views").click()
    page.get_by_role("button", name="refresh list").click()
    choose(page, "variant", f"{kind.family}/{kind.variants[0]}")
    page.wait_for_function("() => document.querySelector('#params textarea').value.includes('train_color')")
    page.click("#show")
    frame = views_frame(page)
    views = frame.evaluate(VIEWS)
    assert [v["figure"] for v in views] == list(kind.views)
    move_slider(frame, 1)
    check_views_move(frame.evaluate(VIEWS), EPOCHS, 1)
    page.get_by_role("tab", name="Train").click()
    choose(page, "cfg-family", kind.family)
    p_is = "vocabulary size" if name == "sequence" else "modulus"
    page.wait_for_function(f"() => document.querySelector('#cfg-p label').textContent.includes('p ({p_is})')")
    declared = set(sweeps.sweepable(load_family(kind.family, str(ROOT / "families"))))
    for knob in KNOBS:
        locator = page.locator(f"#{knob_field(knob)}")
        if knob in declared:
            locator.wait_for(state="visible")
        else:
            locator.wait_for(state="hidden")
    page.close()
