# Per-variant HTML reports from a family's report configurations (families/<family>/reports/).


rule report:
    input:
        unpack(get_report_inputs),
    output:
        report=f"{VDIR}/reports/{{report}}.html",
    log:
        f"{LOGS}/report/{{variant}}_{{report}}.log",
    conda:
        ENV
    threads: 1
    params:
        views=get_report_params,
        family=FAMILY.name,
        code=get_report_code,
    script:
        "../workflow/scripts/report.py"
