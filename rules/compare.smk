# Sweep comparison across the config's variants, of every family (`runs:`) side by side: one
# page per report configuration (title and description from the first family's <report>).


rule compare:
    input:
        unpack(get_compare_inputs),
    output:
        page=report(
            COMPARE_RESULTS.compare("{report}"),
            caption="../workflow/report/compare.rst",
            category="Comparison",
        ),
    log:
        log_file("compare", "{report}", family=COMPARE_RESULTS.family),
    conda:
        ENV
    threads: 1
    params:
        spec=get_compare_spec,
        variants=get_compare_variants,
        families=get_compare_families,
        code=get_compare_code,
    script:
        "../workflow/scripts/compare.py"
