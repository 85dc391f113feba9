"""``python -m tdw dashboard [--host 127.0.0.1] [--port 7860] [--workdir .] [--cores 2]``"""

import argparse
from pathlib import Path

from tdw.pages.dashboard.app import build_app

parser = argparse.ArgumentParser(prog="python -m tdw dashboard", description=__doc__)
parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
parser.add_argument("--port", type=int, default=7860)
parser.add_argument("--workdir", default=".", help="where results/ and dashboard/ configs live")
parser.add_argument("--cores", type=int, default=2, help="snakemake --cores for launched runs")
args = parser.parse_args()
build_app(Path(args.workdir), args.cores).launch(
    server_name=args.host, server_port=args.port, allowed_paths=[str(Path(args.workdir).resolve() / "dashboard" / "views")]
)
