"""``python -m tdw COMMAND [ARGS]``: the workbench's command-line tools under one name.

Commands: ``tables`` (artifacts and histories as CSV/JSON), ``export`` (a report as a static
bundle), ``storage`` (disk use, dropping caches), ``dashboard`` (the Gradio app), ``llc-calibrate``
(the LLC's SGLD hyperparameters over a grid, on one checkpoint). Each is also
``python -m <module>`` with the module listed by ``python -m tdw --help``.
"""

from __future__ import annotations

import runpy
import sys

COMMANDS = {
    "tables": ("tdw.pages.tables", "artifacts and histories as CSV or JSON tables"),
    "export": ("tdw.pages.export", "a variant's report as a static bundle (HTML, PNG, SVG, index.md)"),
    "storage": ("tdw.io.storage", "disk use per variant; drop caches whose artifacts exist"),
    "dashboard": ("tdw.pages.dashboard", "the dashboard: launch runs, browse views (127.0.0.1:7860)"),
    "llc-calibrate": ("tdw.pages.llc_calibrate", "LLC estimates and traces of one checkpoint over an eps x nbeta grid"),
}


def usage() -> str:
    lines = ["usage: python -m tdw COMMAND [ARGS]  (COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<10} {doc}  [{module}]" for name, (module, doc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"python -m tdw: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = COMMANDS[argv[0]][0]
    sys.argv = [f"python -m tdw {argv[0]}", *argv[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
