"""Disk use per variant of a results tree, and dropping forward-pass caches whose
artifacts exist.

A variant's files fall into categories by the folder they lie in (``tdw.layout.FOLDERS``:
checkpoints, cache, artifacts, figures, reports, train_state) and the rest (history,
metadata). A file with several names counts once: training writes each checkpoint into its
train state and hard-links it into the checkpoints folder, so those bytes belong to
``checkpoints`` and ``train_state`` holds only the optimizer snapshot and the files no
checkpoint shares.

    python -m tdw storage results/modadd                 # table, and the family's storage.json
    python -m tdw storage results/modadd --drop-caches   # delete caches whose artifacts exist
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tdw.io.atomic import write_json
from tdw.layout import FOLDERS, FamilyLayout, VariantLayout

# Order matters: a hard-linked file is counted in the first category that names it.
CATEGORIES = ("checkpoints", "cache", "artifacts", "figures", "reports", "train_state", "other")


@dataclass
class VariantUsage:
    """Bytes and file counts of one variant, by category (hard links counted once)."""

    variant: str
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    shared_links: int = 0  # names skipped because their inode was already counted

    @property
    def total(self) -> int:
        return sum(self.bytes.values())


def category(rel: Path) -> str:
    """The category of a file by its path relative to the variant folder."""
    top = rel.parts[0] if len(rel.parts) > 1 else ""
    return next((c for c in CATEGORIES[:-1] if FOLDERS[c] == top), "other")


def variant_usage(variant_dir: Path) -> VariantUsage:
    """Usage of one variant folder; apparent sizes (``st_size``), each inode once."""
    usage = VariantUsage(variant_dir.name)
    files = [p for p in variant_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    files.sort(key=lambda p: (CATEGORIES.index(category(p.relative_to(variant_dir))), str(p)))
    seen: set[tuple[int, int]] = set()
    for path in files:
        st = path.stat()
        if (st.st_dev, st.st_ino) in seen:
            usage.shared_links += 1
            continue
        seen.add((st.st_dev, st.st_ino))
        cat = category(path.relative_to(variant_dir))
        usage.bytes[cat] += st.st_size
        usage.files[cat] += 1
    return usage


def family_layout(family_dir: Path) -> FamilyLayout:
    return FamilyLayout(Path(family_dir).parent, Path(family_dir).name)


def variant_dirs(family_dir: Path) -> list[Path]:
    """Variant folders: those holding a metadata, a config, checkpoints or a train state."""
    return [v.dir for v in family_layout(family_dir).variants()]


def family_usage(family_dir: Path) -> list[VariantUsage]:
    return [variant_usage(d) for d in variant_dirs(family_dir)]


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def format_table(usages: list[VariantUsage]) -> str:
    header = ["variant", *CATEGORIES, "total"]
    rows = [[u.variant, *(_human(u.bytes[c]) for c in CATEGORIES), _human(u.total)] for u in usages]
    totals = {c: sum(u.bytes[c] for u in usages) for c in CATEGORIES}
    rows.append(["all", *(_human(totals[c]) for c in CATEGORIES), _human(sum(totals.values()))])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def to_json(usages: list[VariantUsage]) -> dict:
    return {
        "categories": list(CATEGORIES),
        "variants": {
            u.variant: {"bytes": u.bytes, "files": u.files, "total_bytes": u.total, "shared_links": u.shared_links}
            for u in usages
        },
        "total_bytes": sum(u.total for u in usages),
    }


def droppable_caches(variant_dir: Path) -> list[Path]:
    """Cache files of every probe that has artifacts. Analyzers that have not run yet, or
    that change later, make the workflow regenerate the probe's caches (docs/STORAGE.md)."""
    layout = VariantLayout.at(variant_dir)
    out: list[Path] = []
    for probe_dir in sorted(layout.folder("cache").glob("*")):
        if any(layout.artifact_dir(probe_dir.name).glob("*.h5")):
            out += sorted(probe_dir.glob("*.h5"))
    return out


def drop_caches(family_dir: Path) -> tuple[int, int]:
    """Delete the droppable caches of every variant; returns (files, bytes) deleted."""
    dropped = [c for d in variant_dirs(family_dir) for c in droppable_caches(d)]
    freed = 0
    for path in dropped:
        freed += path.stat().st_size
        path.unlink()
    return len(dropped), freed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tdw storage", description=__doc__.split("\n\n")[0])
    parser.add_argument("family_dir", type=Path, help="results/<family>")
    parser.add_argument("--json", type=Path, help="where to write the report (default: storage.json in family_dir)")
    parser.add_argument(
        "--drop-caches",
        action="store_true",
        help="first delete forward-pass caches whose artifacts exist (see docs/STORAGE.md before using it)",
    )
    args = parser.parse_args(argv)
    if not args.family_dir.is_dir():
        parser.error(f"{args.family_dir} is not a folder")
    if args.drop_caches:
        count, freed = drop_caches(args.family_dir)
        print(f"dropped {count} cache files ({_human(freed)})", file=sys.stderr)
    usages = family_usage(args.family_dir)
    print(format_table(usages))
    write_json(args.json or family_layout(args.family_dir).storage, to_json(usages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
