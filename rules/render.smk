# Figures from artifacts only. `render`: the HTML page per (variant, figure). `static_<family>`:
# the PNG and SVG of every figure of a variant through one browser session (starting Chromium
# costs seconds; each further image a fraction of one). Visual parameters are rule params,
# so changing one re-runs only these jobs. The PNGs go into `snakemake --report` (the
# interactive reports carry the HTML views).


rule render:
    input:
        unpack(get_figure_inputs),
    output:
        html=V.figure("{figure}", "html"),
    log:
        log_file("render", "{variant}_{figure}"),
    benchmark:
        log_file("render", "{variant}_{figure}", "bench.tsv")
    conda:
        ENV
    threads: 1
    params:
        figure=get_figure_params,
        code=get_figure_code,
    script:
        "../workflow/scripts/render.py"


# One rule per run: its figure list names the outputs (loop values bound as lambda defaults).
for _wb in RUNS:
    if not _wb.figures:
        continue
    _figures = list(_wb.figures)
    _layout = FamilyLayout(WB.results, _wb.family.name).variant("{variant}")

    rule:
        name:
            f"static_{_wb.family.name}"
        input:
            unpack(lambda wc, figures=_figures: get_static_inputs(wc, figures)),
        output:
            png=[
                report(
                    _layout.figure(f, "png"),
                    caption="../workflow/report/figure.rst",
                    category="Figures",
                    subcategory=f,
                    labels={"variant": "{variant}", "figure": f},
                )
                for f in _figures
            ],
            svg=[_layout.figure(f, "svg") for f in _figures],
        log:
            log_file("static", "{variant}", family=_wb.family.name),
        benchmark:
            log_file("static", "{variant}", "bench.tsv", family=_wb.family.name)
        wildcard_constraints:
            variant=plan.alternatives(v.name for v in _wb.variants),
        conda:
            ENV
        threads: 1
        params:
            family=_wb.family.name,
            figures=lambda wc, figures=_figures: {f: run_of(wc.variant).figures[f] for f in figures},
            code=lambda wc, figures=_figures: get_static_code(figures),
        script:
            "../workflow/scripts/static.py"
