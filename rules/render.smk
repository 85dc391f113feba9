# Figures from artifacts only: HTML, PNG and SVG per (variant, figure). Visual parameters
# are rule params, so changing one re-runs only these jobs.


rule render:
    input:
        unpack(get_figure_inputs),
    output:
        multiext(f"{VDIR}/figures/{{figure}}", ".html", ".png", ".svg"),
    log:
        f"{LOGS}/render/{{variant}}_{{figure}}.log",
    benchmark:
        f"{LOGS}/render/{{variant}}_{{figure}}.bench.tsv"
    conda:
        ENV
    threads: 1
    params:
        figure=get_figure_params,
        code=get_figure_code,
    script:
        "../workflow/scripts/render.py"
