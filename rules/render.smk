# Figures from artifacts only: HTML, PNG and SVG per (variant, figure). Visual parameters
# are rule params, so changing one re-runs only these jobs. The PNGs go into
# `snakemake --report` (the interactive reports carry the HTML views).


rule render:
    input:
        unpack(get_figure_inputs),
    output:
        html=V.figure("{figure}", "html"),
        png=report(
            V.figure("{figure}", "png"),
            caption="../workflow/report/figure.rst",
            category="Figures",
            subcategory="{figure}",
            labels={"variant": "{variant}", "figure": "{figure}"},
        ),
        svg=V.figure("{figure}", "svg"),
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
