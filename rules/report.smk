# Per-variant HTML reports from a family's report configurations (families/<family>/reports/).


rule report:
    input:
        unpack(get_report_inputs),
    output:
        report=f"{VDIR}/reports/{{report}}.html",
    params:
        spec=get_report_spec,
        family=FAMILY.name,
        code=get_report_code,
    threads: 1
    log:
        f"{LOGS}/report/{{variant}}_{{report}}.log",
    conda:
        ENV
    script:
        "../workflow/scripts/report.py"
