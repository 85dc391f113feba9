"""The Gradio UI over ``tdw.pages.dashboard.jobs``: Train, Analyze and Views tabs."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr

from tdw import sweep as sweeps
from tdw.config import ConfigError
from tdw.layout import RESULTS, FamilyLayout
from tdw.pages.dashboard import jobs
from tdw.pages.dashboard.runs import RUNS

TABS = ("train", "analyze")  # the tabs that launch runs: a session's run is owned by (session, tab)


def _status(code: int | None, started: float, progress: str) -> str:
    if code is None:
        state = f"running ({time.monotonic() - started:.0f} s)"
    elif code == 0:
        state = f"finished in {time.monotonic() - started:.0f} s"
    else:
        state = f"FAILED (exit code {code}), see the log"
    return f"{state}: {progress}" if progress else state


def _iframe(path: Path) -> str:
    src = "/gradio_api/file=" + quote(str(path))
    return f'<iframe id="tdw-views" src="{html.escape(src)}" style="width:100%;height:1500px;border:0"></iframe>'


def build_app(workdir: Path, cores: int = 2) -> gr.Blocks:
    """The dashboard over results and configs in ``workdir``; launched runs use ``cores``."""
    workdir = Path(workdir).resolve()
    (workdir / "dashboard" / "views").mkdir(parents=True, exist_ok=True)
    gr.set_static_paths([str(workdir / "dashboard" / "views")])
    # Telemetry off here, whatever GRADIO_ANALYTICS_ENABLED says.
    with gr.Blocks(title="Training Dynamics Workbench", analytics_enabled=False) as app:
        gr.Markdown("## Training Dynamics Workbench")
        with gr.Tab("Train"):
            _train_tab(workdir, cores)
        with gr.Tab("Analyze"):
            _analyze_tab(workdir, cores)
        with gr.Tab("Views"):
            _views_tab(workdir)
        app.unload(stop_session)  # the browser tab closed or reloaded: its runs stop
    return app


def stop_session(request: gr.Request) -> None:
    for tab in TABS:
        RUNS.stop_owner((request.session_hash, tab))


def _cancel_button(tab: str, run_event, status: gr.Textbox) -> None:
    """A button that stops the tab's run of this session (its whole process group)."""

    def cancel(request: gr.Request) -> str:
        stopped = RUNS.stop_owner((request.session_hash, tab))
        return "CANCELLED: the run and its jobs were stopped" if stopped else "nothing running"

    gr.Button("cancel", elem_id=f"{tab}-cancel").click(cancel, None, status, cancels=[run_event], api_name=f"{tab}_cancel")


# One list field per name a family may declare sweepable (p and seeds first); the chosen
# family's "sweepable" decides which are shown.
KNOBS = ("p", "seed", "data_seed", *(n for n in sweeps.SWEEPABLE if n not in ("p", "seed", "data_seed")))
KNOB_FIELDS = {
    "p": ("113", "p (modulus)", "cfg-p"),
    "seed": ("0", "seed", "cfg-seeds"),
    "data_seed": ("", "data_seed (empty: the seed)", None),
    "betas": ("", "betas (beta1-beta2)", None),
}


def _knob_fields(family: str) -> dict[str, gr.Textbox]:
    shown = set(jobs.knob_names(family))
    fields = {}
    for n in KNOBS:
        value, label, elem_id = KNOB_FIELDS.get(n, ("", n, None))
        fields[n] = gr.Textbox(value, label=label, elem_id=elem_id or f"sweep-{n}", visible=n in shown, min_width=150)
    return fields


def _sweep_frame(path: Path, page: Path) -> str:
    src = html.escape("/gradio_api/file=" + quote(str(path)))
    return (
        f'<p>sweep page <code>{html.escape(str(page))}</code> (<a href="{src}" target="_blank">open</a>)</p>'
        f'<iframe id="tdw-sweep" src="{src}" style="width:100%;height:1500px;border:0"></iframe>'
    )


def _chosen_page(pages: list[str]) -> str | None:
    return "default" if "default" in pages else (pages[0] if pages else None)


def _train_form() -> dict:
    """The Train tab's fields, by name (``knobs``: one per name in ``KNOBS``)."""
    f: dict[str, Any] = {}  # field name -> its component (a dict of them for the knobs)
    with gr.Row():
        f["name"] = gr.Textbox("sweep", label="config name", elem_id="cfg-name")
        families = sorted(p.name for p in jobs.FAMILIES.iterdir() if p.is_dir())
        f["family"] = gr.Dropdown(families, value="modadd", label="family", elem_id="cfg-family")
    gr.Markdown(
        "**Sweep**: comma-separated values per knob the family declares sweepable (empty: not swept); "
        "the variants are the product of the lists, as in a config's `sweep:`."
    )
    with gr.Row():
        f["knobs"] = _knob_fields("modadd")
    with gr.Row():
        f["include"] = gr.Textbox(
            "", label="include (combinations to add, e.g. {p: 113, weight_decay: 0.1})", elem_id="cfg-include"
        )
        f["exclude"] = gr.Textbox("", label="exclude (combinations to remove, e.g. {weight_decay: 3.0})", elem_id="cfg-exclude")
    with gr.Row():
        schedule = "0-400/50, 450-1200/25, 1300-1500/100"
        f["checkpoints"] = gr.Textbox(schedule, label="checkpoints (epochs; from-to/every)", elem_id="cfg-ckpt")
        f["lr"] = gr.Number(1e-3, label="lr where not swept")
        f["wd"] = gr.Number(1.0, label="weight_decay where not swept")
        f["frac"] = gr.Number(0.5, label="train_frac where not swept", elem_id="cfg-frac")
    with gr.Row():
        f["what"] = gr.Radio(["train", "sweep", "reports", "all"], value="reports", label="run", elem_id="cfg-what")
        pages = jobs.sweep_pages("modadd")
        f["sweep"] = gr.Dropdown(pages, value=_chosen_page(pages), label="sweep page", elem_id="cfg-sweep")
    return f


def _train_tab(workdir: Path, cores: int) -> None:
    """A sweep from form values (a list per sweepable knob), validated as a config file is,
    then run through Snakemake with its progress; when done, its sweep page."""

    def launch(request: gr.Request, name, family, include, exclude, checkpoints, lr, wd, frac, what, sweep, *values):
        started = time.monotonic()
        page = sweep if what in ("sweep", "reports", "all") and sweep else None
        try:
            if what == "sweep" and page not in jobs.sweep_pages(family):
                raise ConfigError(f"sweep page {page!r}: family {family} has sweep files {jobs.sweep_pages(family)}")
            knobs = dict(zip(KNOBS, values, strict=True))
            train = {"lr": lr, "weight_decay": wd, "train_frac": frac}
            config, wb = jobs.make_config(workdir, name, family, knobs, checkpoints, train, include, exclude)
        except ConfigError as err:
            yield "", f"NOT STARTED: {err}", "", ""
            return
        names = [v.name for v in wb.variants]
        shown = f"{len(names)} variant{'s' * (len(names) != 1)}: " + ", ".join(names)
        owner = (request.session_hash, "train")
        for log, code, progress in jobs.run_snakemake(workdir, config, what, cores, page if what != "all" else None, owner):
            yield log, _status(code, started, progress), shown, sweep_view(family, page) if code == 0 and page else ""

    def sweep_view(family: str, page: str) -> str:
        built = FamilyLayout(workdir / RESULTS, family).sweep(page)
        try:
            return _sweep_frame(jobs.show_sweep_page(workdir, family, page), built)
        except OSError as err:
            return f"<p>no sweep page to show: {html.escape(str(err))}</p>"

    def choose_family(family):
        shown, pages = set(jobs.knob_names(family)), jobs.sweep_pages(family)
        knobs = [gr.update(visible=n in shown) | ({"label": jobs.p_label(family)} if n == "p" else {}) for n in KNOBS]
        return knobs + [gr.update(choices=pages, value=_chosen_page(pages))]

    f = _train_form()
    go_btn = gr.Button("launch", variant="primary", elem_id="launch")
    status = gr.Textbox(label="status", elem_id="run-status")
    shown = gr.Textbox(label="variants of the config", elem_id="run-variants")
    log = gr.Textbox(label="snakemake output", lines=14, max_lines=30, elem_id="run-log")
    frame = gr.HTML(elem_id="sweep-frame")
    fields = ("name", "family", "include", "exclude", "checkpoints", "lr", "wd", "frac", "what", "sweep")
    inputs = [*(f[k] for k in fields), *f["knobs"].values()]
    run_event = go_btn.click(launch, inputs, [log, status, shown, frame], api_name="train_launch")
    _cancel_button("train", run_event, status)
    f["family"].change(choose_family, [f["family"]], [*f["knobs"].values(), f["sweep"]])


def _analyze_tab(workdir: Path, cores: int) -> None:
    """Analyzers and reports of a config launched from this dashboard."""

    def analyze(request: gr.Request, name):
        started = time.monotonic()
        try:
            config = jobs.launched_config(workdir, name)
        except ConfigError as err:
            yield "", f"NOT STARTED: {err}"
            return
        for log, code, progress in jobs.run_snakemake(workdir, config, "reports", cores, owner=(request.session_hash, "analyze")):
            yield log, _status(code, started, progress)

    a_name = gr.Textbox("sweep", label="config name (launched from this dashboard)", elem_id="analyze-name")
    a_btn = gr.Button("run analyzers and reports", elem_id="analyze")
    a_status = gr.Textbox(label="status", elem_id="analyze-status")
    a_log = gr.Textbox(label="snakemake output", lines=14, max_lines=30)
    run_event = a_btn.click(analyze, [a_name], [a_log, a_status], api_name="analyze")
    _cancel_button("analyze", run_event, a_status)


def _views_tab(workdir: Path) -> None:
    """A finished variant's report of its family's choice, with editable visual parameters."""

    def choose_variant(key, report):
        names = jobs.reports_for(key)
        report = report if report in names else ("default" if "default" in names else names[0])
        return gr.update(choices=names, value=report), *load_params(key, report)

    def load_params(key, report):
        if not key:
            return "{}", ""
        try:
            return json.dumps(jobs.view_params(workdir, key, report), indent=2), ""
        except ConfigError as err:
            return "{}", f"error: {err}"

    def show(key, report, params_text):
        if not key:
            return "", "choose a variant"
        t0 = time.perf_counter()
        try:
            overrides = json.loads(params_text or "{}")
            path = jobs.render_variant_report(workdir, key, report, overrides)
        except (ConfigError, json.JSONDecodeError, KeyError, OSError) as err:
            return "", f"error: {html.escape(str(err))}"
        changed = html.escape(json.dumps(overrides)) if overrides else "family defaults"
        return _iframe(path), f"rendered {key} / {report} in {time.perf_counter() - t0:.2f} s with {changed}"

    with gr.Row():
        variant = gr.Dropdown(jobs.variants(workdir), value=None, label="variant", elem_id="variant")
        report = gr.Dropdown(jobs.reports_for(None), value="default", label="report", elem_id="report")
        refresh_btn = gr.Button("refresh list")
    params = gr.Textbox("{}", lines=10, label="visual parameters per view, JSON (edit, then show)", elem_id="params")
    show_btn = gr.Button("show", variant="primary", elem_id="show")
    v_status = gr.Markdown(elem_id="views-status")
    frame = gr.HTML(elem_id="views-frame")
    refresh_btn.click(lambda: gr.update(choices=jobs.variants(workdir)), None, variant)
    variant.change(choose_variant, [variant, report], [report, params, v_status])  # the variant's family's reports
    report.change(load_params, [variant, report], [params, v_status])
    show_btn.click(show, [variant, report, params], [frame, v_status])
