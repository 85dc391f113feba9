"""The dashboard is safe to run, through the real server on 127.0.0.1: a config name that
leaves the dashboard's config folder is refused, a launched run cancelled or left by its
closed tab or by the server's shutdown leaves no process of its group and no zombie, a request
naming another host is refused, and a bind outside loopback without a login is refused before
any socket opens. Only loopback addresses are used."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from dashboard_server import free_port, serve_dashboard

from tdw.pages.dashboard import server

pytest.importorskip("gradio_client")
ROOT = Path(__file__).resolve().parents[1]
# The Train tab's inputs after the request: name, family, include, exclude, checkpoints, lr,
# weight decay, train fraction, run, sweep page, then one list per knob (p, seed, ... empty).
KNOBS = 12


def long_training(name: str) -> list:
    """Train-tab values of one variant (p 113) whose training runs far longer than a test."""
    return [name, "modadd", "", "", "0-200000/100000", 1e-3, 1.0, 0.5, "train", None, "113", "0", *[""] * (KNOBS - 2)]


def processes() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, process group, state) of every process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit():
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
            found.append((int(entry.name), int(fields[1]), int(fields[2]), fields[0]))
    return found


def my_zombies(timeout: float = 5) -> list[int]:
    """This process's children left unreaped after ``timeout`` seconds (a child that just died
    is a zombie until its parent reaps it: a moment, not for good)."""
    deadline = time.monotonic() + timeout
    while True:
        zombies = [pid for pid, ppid, _, state in processes() if ppid == os.getpid() and state == "Z"]
        if not zombies or time.monotonic() > deadline:
            return zombies
        time.sleep(0.1)


def group(pgid: int) -> list[int]:
    return [pid for pid, _, pg, state in processes() if pg == pgid and state != "Z"]


def launched_group(timeout: float = 120) -> int:
    """The group of the run this test process launched, once Snakemake has started a job in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [pid for pid, ppid, pg, state in processes() if ppid == os.getpid() and pg == pid and state != "Z"]
        if leaders and len(group(leaders[0])) >= 2:  # snakemake and its training job
            return leaders[0]
        time.sleep(0.2)
    raise AssertionError(f"no launched run with a job within {timeout} s")


def gone(pgid: int, timeout: float = 30) -> list[int]:
    """The group's processes still alive after ``timeout`` seconds (none, once stopped)."""
    deadline = time.monotonic() + timeout
    while group(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return group(pgid)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("safe")
    with serve_dashboard(workdir) as url:
        yield url, workdir


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def test_a_config_name_outside_the_config_folder_is_refused(dashboard, tmp_path):
    url, workdir = dashboard
    outside = tmp_path / "outside.yaml"
    outside.write_text(f"family: modadd\nresults: {tmp_path}/elsewhere\n")
    (workdir / "dashboard" / "evil.yaml").symlink_to(outside)
    c = client(url)
    for name, problem in [
        (f"../../{tmp_path.name}/outside", "has the character '/'"),
        (str(outside.with_suffix("")), "has the character '/'"),
        ("..", "is a relative folder"),
        ("nope", f"no config nope.yaml in {workdir / 'dashboard'}; launched configs: ['evil']"),
        ("evil", f"leads to {outside}, outside {workdir / 'dashboard'}"),
    ]:
        log, status = c.predict(name, api_name="/analyze")
        assert status.startswith(f"NOT STARTED: config name {name!r}"), status
        assert problem in status, status
        assert log == ""
    assert not (tmp_path / "elsewhere").exists()
    c.close()


def test_a_train_config_name_that_is_no_plain_name_is_refused(dashboard):
    url, workdir = dashboard
    c = client(url)
    for name, problem in [
        ("../escaped", "has the character '/'"),
        ("x" * 101, "has 101 characters"),
        ("sweeps", "results layout"),
    ]:
        log, status, shown, _ = c.predict(*long_training(name), api_name="/train_launch")
        assert status.startswith("NOT STARTED: config name ") and problem in status, status
        assert log == shown == ""
    assert sorted(p.name for p in workdir.iterdir()) == ["dashboard"] and not (workdir.parent / "escaped.yaml").exists()
    c.close()


def test_a_cancelled_run_leaves_no_process_and_no_zombie(dashboard):
    url, workdir = dashboard
    c = client(url)
    job = c.submit(*long_training("cancelled"), api_name="/train_launch")
    pgid = launched_group()
    assert c.predict(api_name="/train_cancel") == "CANCELLED: the run and its jobs were stopped"
    assert gone(pgid) == []
    assert my_zombies() == []
    assert (workdir / ".snakemake").is_dir() and list(workdir.glob(".snakemake/locks/*")) == []  # the workdir is unlocked
    assert c.predict(api_name="/train_cancel") == "nothing running"
    job.cancel()
    c.close()


def test_a_closed_tab_stops_its_run(dashboard):
    url, _ = dashboard
    c = client(url)
    c.submit(*long_training("closed"), api_name="/train_launch")
    pgid = launched_group()
    c.close()  # the heartbeat ends, as when the browser tab closes: the session's unload runs
    assert gone(pgid) == []
    assert my_zombies() == []


def test_a_request_naming_another_host_is_refused(dashboard):
    url, _ = dashboard
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert httpx.get(url, headers={"Host": host}).status_code == 200
    for host in (f"attacker.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", ""):
        answer = httpx.get(url + "gradio_api/info", headers={"Host": host})
        assert answer.status_code == 400
        assert answer.text.startswith(f"400: Host {host!r} is not served here; use one of ['127.0.0.1:{port}', '[::1]:{port}',")


def test_shutdown_stops_the_runs(tmp_path):
    with serve_dashboard(tmp_path) as url:
        client(url).submit(*long_training("shutdown"), api_name="/train_launch")
        pgid = launched_group()
    assert gone(pgid, timeout=1) == []  # stopped before the server closed
    assert my_zombies() == []


def test_a_bind_outside_loopback_needs_a_login_before_any_socket_opens(tmp_path):
    port = free_port()
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "tdw", "dashboard", "--host", "0.0.0.0", "--port", str(port), "--workdir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "Running on" not in done.stdout
    assert done.stderr.strip() == (
        "python -m tdw dashboard: --host 0.0.0.0: the dashboard binds outside loopback only with a login; "
        "pass --auth-file FILE (lines user:password), or bind 127.0.0.1"
    )
    assert not (tmp_path / "dashboard").exists()  # refused before the app was built
    for host in ("0.0.0.0", "::", "192.168.1.5", "dashboard.example"):
        with pytest.raises(server.UnsafeBindError, match=f"--host {host}: the dashboard binds outside loopback only"):
            server.check_bind(host, None)
        server.check_bind(host, [("ann", "secret")])
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        server.check_bind(host, None)


def test_auth_file_lines(tmp_path):
    logins = tmp_path / "logins"
    logins.write_text("# who may log in\nann:s3cret:with:colons\n\nbob:pw\n")
    assert server.read_auth_file(logins) == [("ann", "s3cret:with:colons"), ("bob", "pw")]
    logins.write_text("ann:ok\nbob\n")
    with pytest.raises(server.UnsafeBindError, match=rf"^auth file {logins}: line 2: expected user:password \(both non-empty\)$"):
        server.read_auth_file(logins)
    logins.write_text("# nobody\n")
    with pytest.raises(server.UnsafeBindError, match=rf"^auth file {logins}: no user:password line$"):
        server.read_auth_file(logins)
