# Analyzers: one job per (variant, probe, analyzer), streaming over all checkpoints into one
# artifact with an epoch axis.


rule analyze:
    input:
        unpack(get_analyzer_inputs),
    output:
        artifact=V.artifact("{probe}", "{analyzer}"),
    log:
        log_file("analyze", "{variant}_{probe}_{analyzer}"),
    benchmark:
        log_file("analyze", "{variant}_{probe}_{analyzer}", "bench.tsv")
    conda:
        ENV
    threads: 1
    params:
        analyzer_params=get_analyzer_params,
        changed=get_changed_inputs,
        code=get_analyzer_code,
    script:
        "../workflow/scripts/analyze.py"
