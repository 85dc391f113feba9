# Sweep pages: per sweep file of the family (families/<family>/sweeps/<sweep>.json, or a
# parent family's), one page over all the config's variants of that family: measures against
# the swept parameters, seeds as spread.


rule sweep_page:
    input:
        unpack(get_sweep_inputs),
    output:
        page=FamilyLayout(WB.results, "{family}").sweep("{sweep}"),
    log:
        log_file("sweep_page", "{sweep}"),
    wildcard_constraints:
        sweep="[A-Za-z0-9_-]+",
    conda:
        ENV
    threads: 1
    params:
        spec=get_sweep_spec,
        variants=get_sweep_variants,
        code=get_sweep_code,
    script:
        "../workflow/scripts/sweep.py"
