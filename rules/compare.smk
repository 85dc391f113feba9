# Sweep comparison across the config's variants: one page per report configuration
# (title and description from the family's report configuration <report>).


rule compare:
    input:
        unpack(get_compare_inputs),
    output:
        page=report(
            FAMILY_RESULTS.compare("{report}"),
            caption="../workflow/report/compare.rst",
            category="Comparison",
        ),
    log:
        log_file("compare", "{report}"),
    conda:
        ENV
    threads: 1
    params:
        spec=get_compare_spec,
        variants=get_compare_variants,
        code=get_compare_code,
    script:
        "../workflow/scripts/compare.py"
