"""``python -m tdw dashboard [--host 127.0.0.1] [--port 7860] [--workdir .] [--cores 2]``
``[--auth-file FILE] [--allowed-host NAME]``

Binds 127.0.0.1 unless told otherwise; any other address needs ``--auth-file`` (lines
``user:password``). Requests must name the bound host and port (or, on a loopback or 0.0.0.0
bind, localhost / 127.0.0.1) in their Host header; ``--allowed-host`` adds a name."""

import argparse
import signal
import sys
from pathlib import Path

from tdw.pages.dashboard.app import build_app
from tdw.pages.dashboard.server import UnsafeBindError, check_bind, read_auth_file, serve

parser = argparse.ArgumentParser(
    prog="python -m tdw dashboard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
)
parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
parser.add_argument("--port", type=int, default=7860)
parser.add_argument("--workdir", default=".", help="where results/ and dashboard/ configs live")
parser.add_argument("--cores", type=int, default=2, help="snakemake --cores for launched runs")
parser.add_argument("--auth-file", help="logins, one user:password a line; required for a bind outside loopback")
parser.add_argument("--allowed-host", action="append", default=[], help="another Host header name to serve (repeatable)")
args = parser.parse_args()
try:
    auth = read_auth_file(args.auth_file) if args.auth_file else None
    check_bind(args.host, auth)  # before the app is built or any socket opens
except UnsafeBindError as err:
    sys.exit(f"python -m tdw dashboard: {err}")


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops the server and its runs as Ctrl-C does


signal.signal(signal.SIGTERM, _interrupt)

serve(build_app(Path(args.workdir), args.cores), Path(args.workdir), args.host, args.port, auth, args.allowed_host)
