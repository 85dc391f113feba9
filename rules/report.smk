# Per-variant HTML reports from a family's report configurations (families/<family>/reports/),
# and the front page of `snakemake --report`.


report: "../workflow/report/workflow.rst"


rule report:
    input:
        unpack(get_report_inputs),
    output:
        report=report(
            V.report("{report}"),
            caption="../workflow/report/report.rst",
            category="Reports",
            subcategory="{report}",
            labels={"variant": "{variant}", "report": "{report}"},
        ),
    log:
        log_file("report", "{variant}_{report}"),
    conda:
        ENV
    threads: 1
    params:
        spec=get_report_spec,
        family=get_family,
        code=get_report_code,
    script:
        "../workflow/scripts/report.py"
