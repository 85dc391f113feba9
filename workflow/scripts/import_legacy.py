"""Snakemake adapter: import a legacy run as a variant (rules/train.smk)."""

from pathlib import Path

from tdw.config import Variant, load_family
from tdw.progress import job_log
from tdw.train.legacy import import_variant

run = snakemake.params.run  # noqa: F821
with job_log(snakemake.log[0], f"import_legacy {run['variant']['name']}"):  # noqa: F821
    v = run["variant"]
    family = load_family(run["family"], str(Path(snakemake.scriptdir).parents[1] / "families"))  # noqa: F821
    legacy = snakemake.params.legacy  # noqa: F821
    variant = Variant(v["name"], v["p"], v["seed"], v["train_frac"], tuple(v["epochs"]), legacy, v["legacy_test_every"])
    import_variant(variant.legacy_path, family, variant, Path(snakemake.output.metadata).parent)  # noqa: F821
