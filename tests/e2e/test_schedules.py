"""Schedules of deployed apps: a Period runs by itself, a redeploy without
the schedule stops it, an ephemeral `skiff run` app fires while it runs, a Cron in a
time zone reports its next run, runs missed while skiffd was down are
reported once and not replayed, and a bad schedule is refused at deploy
with a message that names the problem."""

from __future__ import annotations

import datetime
import os
import re
import time
import zoneinfo

import pytest

from conftest import APPS_DIR, describe

SCHED_APP = os.path.join(APPS_DIR, "sched_app.py")
HOST = {"SKIFF_DEFAULT_IMAGE": "host"}


def app_file(tmp_path, name: str, schedule: str, tag: str = "v1") -> str:
    with open(SCHED_APP) as f:
        text = f.read()
    text = text.replace("APP_NAME", name).replace("SCHEDULE", schedule).replace("TAG", tag)
    path = tmp_path / f"{name.replace('-', '_')}_{tag}.py"
    path.write_text(text)
    return str(path)


def deploy(daemon, path: str, check: int = 0):
    return daemon.skiff("deploy", path, env=HOST, check=check, timeout=300)


def logs(daemon, app: str):
    r = daemon.api("GET", f"/v1/apps/{app}/logs?limit=10000")
    assert r.status == 200, r
    return r.json["logs"]


def runs(daemon, app: str):
    """The 'schedule: running' lines of the app's log: [(ts, call_id)]."""
    out = []
    for c in logs(daemon, app):
        m = re.search(r"schedule: running tick \(.*\), call (fc-\w+)", c["data"])
        if c["stream"] == "system" and m:
            out.append((c["ts"], m.group(1)))
    return out


def ticks(daemon, app: str, tag: str):
    return sum(c["data"].count(f"tick {tag} ") for c in logs(daemon, app) if c["stream"] == "stdout")


def fn_json(daemon, app: str, name: str):
    r = daemon.api("GET", f"/v1/apps/{app}")
    assert r.status == 200, r
    return [f for f in r.json["functions"] if f["name"] == name][0]


def test_period_runs_on_a_deployed_app(daemon, tmp_path):
    deploy(daemon, app_file(tmp_path, "sched-period", "skiff.Period(seconds=2)"))
    f = fn_json(daemon, "sched-period", "tick")
    assert f["schedule_description"] == "every 2s", f
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?Z", f["next_run"]), f
    assert "next_run" not in fn_json(daemon, "sched-period", "plain")
    daemon.wait_for(lambda: len(runs(daemon, "sched-period")) >= 3, timeout=30, interval=0.5,
                    what="three scheduled runs")
    r = runs(daemon, "sched-period")
    assert len({cid for _, cid in r}) == len(r), r
    # Every 2 s, never two at once (generous bounds: the machine is shared).
    gaps = [b[0] - a[0] for a, b in zip(r, r[1:])]
    assert all(1.0 < g < 6.0 for g in gaps), gaps
    daemon.wait_for(lambda: ticks(daemon, "sched-period", "v1") >= 2, timeout=30, interval=0.5,
                    what="the function's own output")
    call = daemon.api("GET", f"/v1/calls/{r[0][1]}").json
    assert call["kind"] == "schedule" and call["done"] == 1, call
    p = daemon.skiff("app", "logs", "sched-period", check=0)
    assert "schedule: running tick (every 2s), call fc-" in p.stdout + p.stderr, p


def utc_minute_or_second(t: float) -> str:
    """A time as skiffd writes next_run (whole seconds, ":00" left out)."""
    d = datetime.datetime.fromtimestamp(int(t // 1), datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%MZ" if d.second == 0 else "%Y-%m-%dT%H:%M:%SZ")


def test_period_fires_in_every_period(daemon, tmp_path):
    """The n-th run of a Period(p) is the one due at deploy + n*p: it starts
    no earlier than that and before the next one is due, and next_run is
    always on that grid. Checked against the times skiffd recorded (the
    version's created_at, each run's call created_at), not by counting runs
    over a sleep."""
    name = "sched-grid"
    period = 2.0
    deploy(daemon, app_file(tmp_path, name, "skiff.Period(seconds=2)"))
    r = daemon.api("GET", f"/v1/apps/{name}/versions")
    assert r.status == 200, r
    anchor = r.json["versions"][0]["created_at"]
    grid = {utc_minute_or_second(anchor + k * period) for k in range(1, 40)}
    seen_next = set()

    def four_runs():
        seen_next.add(fn_json(daemon, name, "tick")["next_run"])
        return len(runs(daemon, name)) >= 4
    daemon.wait_for(four_runs, timeout=40, interval=0.2, what="four scheduled runs")
    daemon.skiff("app", "stop", name, check=0)
    assert seen_next <= grid, (seen_next, anchor)
    for n, (_, cid) in enumerate(runs(daemon, name)[:4], start=1):
        call = daemon.api("GET", f"/v1/calls/{cid}").json
        assert call["kind"] == "schedule", call
        late = call["created_at"] - (anchor + n * period)
        # Not early, and not as late as the next run's time.
        assert 0 <= late < period, f"run {n} was due at deploy + {n}*{period}s, ran {late:.3f}s after that"


def test_redeploy_without_the_schedule_stops_it(daemon, tmp_path):
    name = "sched-redeploy"
    deploy(daemon, app_file(tmp_path, name, "skiff.Period(seconds=1)"))
    daemon.wait_for(lambda: len(runs(daemon, name)) >= 1, timeout=30, interval=0.5, what="a run")
    deploy(daemon, app_file(tmp_path, name, "None", tag="v2"))
    n = len(runs(daemon, name))
    time.sleep(4)
    assert len(runs(daemon, name)) == n
    assert "next_run" not in fn_json(daemon, name, "tick")
    # A rollback to version 1 (as version 3) brings the schedule back.
    time.sleep(1)  # output of v1's last run, if it was still on its way
    before = ticks(daemon, name, "v1")
    p = daemon.skiff("app", "rollback", name, "1", check=0)
    assert "as version 3" in p.stdout, describe(p, daemon)
    daemon.wait_for(lambda: len(runs(daemon, name)) > n, timeout=30, interval=0.5,
                    what="a run after the rollback")
    daemon.wait_for(lambda: ticks(daemon, name, "v1") > before, timeout=30, interval=0.5,
                    what="version 1's code running again")
    # A stopped app does not run.
    daemon.skiff("app", "stop", name, check=0)
    n = len(runs(daemon, name))
    time.sleep(3)
    assert len(runs(daemon, name)) == n


def test_ephemeral_app_fires_while_it_runs(daemon, tmp_path):
    """As in Modal, an ephemeral app (`skiff run`) fires its schedules for
    as long as it runs; they stop with it."""
    path = tmp_path / "eph_sched.py"
    path.write_text(
        "import time, skiff\n"
        "app = skiff.App('sched-eph')\n"
        "@app.function(schedule=skiff.Period(seconds=1))\n"
        "def tick():\n"
        "    d = skiff.Dict.from_name('sched-eph-ticks', create_if_missing=True)\n"
        "    d.put('n', d.get('n', 0) + 1)\n"
        "    print('tick eph', flush=True)\n"
        "@app.local_entrypoint()\n"
        "def main():\n"
        "    d = skiff.Dict.from_name('sched-eph-ticks', create_if_missing=True)\n"
        "    deadline = time.monotonic() + 120\n"
        "    while d.get('n', 0) < 2 and time.monotonic() < deadline:\n"
        "        time.sleep(0.2)\n"
        "    print('@@', d.get('n', 0) >= 2)\n"
    )
    p = daemon.skiff("run", str(path), env=HOST, check=0, timeout=240)
    assert p.returncode == 0 and "@@ True" in p.stdout, describe(p, daemon)
    assert "tick eph" in p.stdout, describe(p, daemon)  # its logs stream as any call's
    assert len(runs(daemon, "sched-eph")) >= 2
    r = daemon.api("GET", "/v1/apps/sched-eph")
    assert r.status == 200 and r.json["state"] == "stopped", r.json
    # a stopped app has no next run: nothing more fires
    assert all("next_run" not in f for f in r.json["functions"]), r.json["functions"]


def test_cron_next_run_in_a_time_zone(daemon, tmp_path):
    name = "sched-cron"
    deploy(daemon, app_file(tmp_path, name, 'skiff.Cron("0 3 * * *", timezone="Europe/Paris")'))
    f = fn_json(daemon, name, "tick")
    assert f["schedule_description"] == "cron 0 3 * * * (Europe/Paris)", f
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    now = datetime.datetime.now(paris)
    want = {
        (now.replace(hour=3, minute=0, second=0, microsecond=0) + datetime.timedelta(days=d))
        .astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
        for d in (0, 1, 2)
        if now.replace(hour=3, minute=0, second=0, microsecond=0) + datetime.timedelta(days=d) > now
    }
    assert f["next_run"] == min(want), (f, want)


def test_missed_runs_are_reported_once_not_replayed(daemon_factory, tmp_path):
    d = daemon_factory()
    d.start()
    name = "sched-missed"
    deploy(d, app_file(tmp_path, name, "skiff.Period(seconds=1)"))
    d.wait_for(lambda: len(runs(d, name)) >= 2, timeout=30, interval=0.2, what="two runs")
    assert d.stop() == 0
    time.sleep(4.5)
    d.start()
    started = time.time()

    def missed_lines():
        return [c for c in logs(d, name) if c["stream"] == "system" and "missed" in c["data"]]
    d.wait_for(missed_lines, timeout=15, interval=0.2, what="the missed-runs line")
    # Runs go on after the restart, at the period's pace.
    d.wait_for(lambda: [t for t, _ in runs(d, name) if t >= started - 1] != [], timeout=15,
               interval=0.2, what="a run after the restart")
    time.sleep(max(0.0, started + 3.0 - time.time()))
    lines = missed_lines()
    assert len(lines) == 1, lines
    m = re.search(r"schedule: (\d+) runs of tick \(every 1s\) were missed while skiffd was down "
                  r"\(first \S+; last ran \S+\); they are not replayed, the next run is at \S+",
                  lines[0]["data"])
    assert m and int(m.group(1)) >= 3, lines[0]["data"]
    # No storm: after the report, runs come one per period.
    reported = lines[0]["ts"]
    time.sleep(max(0.0, reported + 3.2 - time.time()))
    after = [t - reported for t, _ in runs(d, name) if t >= reported]
    assert len([t for t in after if t < 1.5]) <= 2, after
    assert len([t for t in after if t < 3.0]) <= 4, after
    d.skiff("app", "stop", name, check=0)


@pytest.mark.parametrize("schedule, message", [
    ('skiff.Cron("61 * * * *")', "cron '61 * * * *': minute 61 is out of range 0-59"),
    ('skiff.Cron("* * *")', "cron '* * *': needs 5 fields (minute hour day month weekday), got 3"),
    ('skiff.Cron("0 3 * * *", timezone="Mars/Olympus")', "timezone 'Mars/Olympus' is unknown"),
])
def test_bad_schedule_is_refused_at_deploy(daemon, tmp_path, schedule, message):
    p = deploy(daemon, app_file(tmp_path, "sched-bad", schedule), check=None)
    assert p.returncode != 0 and message in p.stderr, describe(p)
    assert "Traceback" not in p.stderr, describe(p)
    assert daemon.app_by_name("sched-bad") is None


@pytest.mark.parametrize("schedule, message", [
    ({"type": "cron", "cron": "61 * * * *"}, "cron '61 * * * *': minute 61 is out of range 0-59"),
    ({"type": "cron", "cron": "* * *"}, "needs 5 fields (minute hour day month weekday), got 3"),
    ({"type": "cron", "cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is unknown"),
    ({"type": "period", "seconds": 0.5}, "period: must last at least 1 second (got 0.5 seconds)"),
])
def test_skiffd_refuses_a_bad_schedule(daemon, schedule, message):
    """What skiffd answers a client that skipped the SDK's own check."""
    from conftest import function_def
    fn = function_def("tick", "m", image="host", schedule=schedule)
    r = daemon.api("POST", "/v1/apps", {"name": "sched-bad-http", "deploy": True, "files": [],
                                        "functions": [fn]})
    assert r.status == 400, r
    assert message in r.json["error"]["message"] and "schedule" in r.json["error"]["message"], r
    assert daemon.app_by_name("sched-bad-http") is None


def test_skiffd_message_reaches_skiff_deploy(daemon, tmp_path):
    """A client without tzdata cannot check a zone name: skiffd's refusal is
    what `skiff deploy` prints, in one line."""
    path = tmp_path / "srvbad.py"
    path.write_text(
        "import skiff, skiff.schedule\n"
        "skiff.schedule.ZONEINFO_DIR = '/nonexistent'  # as on a client without tzdata\n"
        "app = skiff.App('sched-srvbad')\n"
        "@app.function(schedule=skiff.Cron('0 3 * * *', timezone='Mars/Olympus'))\n"
        "def tick():\n"
        "    pass\n"
    )
    p = deploy(daemon, str(path), check=None)
    assert p.returncode == 1, describe(p)
    assert "schedule: timezone 'Mars/Olympus' is unknown" in p.stderr, describe(p)
    assert len(p.stderr.strip().splitlines()) == 1, describe(p)
    assert daemon.app_by_name("sched-srvbad") is None
