# Training Dynamics Workbench: train -> shared forward pass -> analyzers -> figures -> reports.
# This file is the table of contents; helpers live in rules/common.smk.


include: "rules/common.smk"
include: "rules/train.smk"
include: "rules/cache.smk"
include: "rules/analyze.smk"
include: "rules/render.smk"
include: "rules/report.smk"
include: "rules/compare.smk"
include: "rules/sweep.smk"


rule all:
    default_target: True
    input:
        get_all_targets(),
