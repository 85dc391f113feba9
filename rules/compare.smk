# Sweep comparison across the config's variants: results/<family>/compare/<report>.html
# (title and description from the family's report configuration <report>).


rule compare:
    input:
        unpack(get_compare_inputs),
    output:
        page=report(
            f"{WB.results}/{FAMILY.name}/compare/{{report}}.html",
            caption="../workflow/report/compare.rst",
            category="Comparison",
        ),
    log:
        f"{LOGS}/compare/{{report}}.log",
    conda:
        ENV
    threads: 1
    params:
        spec=get_compare_spec,
        variants=get_compare_variants,
        code=get_compare_code,
    script:
        "../workflow/scripts/compare.py"
