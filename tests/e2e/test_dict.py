"""Issue 12: Dicts, from the caller and from inside containers; expiry;
durability across kill -9 of skiffd; the CLI; every bad input."""

import os
import sqlite3
import subprocess
import time

import pytest
from conftest import DEBIAN_PYTHON, SKIFFD, describe, parse_results
from dq_util import DQ_APP, pk, run_py, unpk


def test_dict_in_containers_and_caller(daemon):
    p = daemon.skiff("run", DQ_APP, "--check", "dict", "--name", "e2e-d1", python=DEBIAN_PYTHON, timeout=180)
    assert p.returncode == 0, describe(p, daemon)
    res = parse_results(p.stdout)
    ops = res["dict_ops"]
    assert ops["get"] == {"x": 1}
    assert ops["get_default"] == "dflt"
    assert ops["skip"] is False and ops["after_skip"] == {"x": 1}
    assert ops["contains"] == [True, False]
    assert ops["len"] == 5
    assert ops["keys"] == sorted(["'a'", "('t', 1)", "'u1'", "'u2'", "'u3'"])
    assert ops["values"] == sorted(["{'x': 1}", "[1, 2, 3]", "1", "2", "3"])
    assert ops["pop"] == 1 and ops["pop_missing"] == "KeyError"
    assert ops["getitem_missing"] == "KeyError" and ops["len_after_pop"] == 4
    assert res["caller_reads"] == [{"x": 1}, 2, 4]
    assert res["container_reads"] == [1, "two"]
    assert res["shared"] == "hello"


def test_dict_from_caller(daemon):
    res = run_py(daemon, """
        d = skiff.Dict.from_name("e2e-d2", create_if_missing=True)
        d[1] = "int"
        d[1.0] = "float"          # keys are compared by their pickled bytes
        d[b"k"] = bytearray(b"v")
        say("len", len(d))
        say("int_float", [d[1], d[1.0]])
        say("put_new", d.put("new", 1, skip_if_exists=True))
        say("put_again", d.put("new", 2, skip_if_exists=True))
        say("put_over", d.put("new", 3))
        say("new", d["new"])
        del d["new"]
        say("gone", "new" in d)
        d.update({i: i * i for i in range(2500)})  # more than one page of items
        items = dict(d.items())
        say("items", [len(d), len(list(d.items())), items[49], max(k for k in d.keys() if isinstance(k, int))])
        d.clear()
        say("cleared", [len(d), list(d.keys())])
        with skiff.Dict.ephemeral({"a": 1}) as e:
            e["b"] = 2
            say("ephemeral", [e["a"], e["b"], e.name])
            eid = e.object_id
        say("ephemeral_gone", error_of(lambda: skiff.Dict.from_name(eid).len()) is not None)
        sys.path.append(os.path.join(os.path.dirname(skiff.__file__), "_compat"))
        import modal
        m = modal.Dict.from_name("e2e-d2")
        m["via_modal"] = 1
        say("modal", d["via_modal"])
    """)
    assert res["len"] == 3
    assert res["int_float"] == ["int", "float"]
    assert res["put_new"] is True and res["put_again"] is False and res["put_over"] is True
    assert res["new"] == 3 and res["gone"] is False
    assert res["items"] == [2502, 2502, 49 * 49, 2499]
    assert res["cleared"] == [0, []]
    assert res["ephemeral"] == [1, 2, None]
    assert res["ephemeral_gone"] is True
    assert res["modal"] == 1
    names = [d["name"] for d in daemon.api("GET", "/v1/dicts").json["dicts"]]
    assert "e2e-d2" in names and None not in names  # ephemeral Dicts are not listed


def test_dict_entries_expire(daemon_factory):
    d = daemon_factory(["--dict-ttl", "2s", "--retention-interval", "0.2s"])
    d.start()
    res = run_py(d, """
        dd = skiff.Dict.from_name("e2e-ttl", create_if_missing=True)
        dd["read"] = 1
        dd["idle"] = 2
        for _ in range(4):          # reads keep "read" alive past its TTL
            time.sleep(0.8)
            assert dd["read"] == 1
        say("after_reads", [dd.get("read"), dd.get("idle", "expired"), len(dd)])
        time.sleep(2.5)
        say("after_idle", [dd.get("read", "expired"), len(dd)])
        dd["read"] = 3              # an expired key can be written again
        say("rewritten", dd["read"])
    """)
    assert res["after_reads"] == [1, "expired", 1]
    assert res["after_idle"] == ["expired", 0]
    assert res["rewritten"] == 3
    # retention deleted the expired rows from the store, not only hid them
    db = sqlite3.connect(os.path.join(d.home, "skiff.db"))
    try:
        n = db.execute("SELECT count(*) FROM dict_entries").fetchone()[0]
    finally:
        db.close()
    assert n == 1


@pytest.mark.parametrize("fsync", [[], ["--dq-fsync", "always"]], ids=["everysec", "always"])
def test_dict_survives_kill9(daemon_factory, fsync):
    d = daemon_factory(fsync)
    d.start()
    run_py(d, """
        dd = skiff.Dict.from_name("e2e-durable", create_if_missing=True)
        dd.update({i: "v%d" % i for i in range(200)})
        dd["last"] = "acknowledged"
    """)
    d.kill9()
    d.start()
    res = run_py(d, """
        dd = skiff.Dict.from_name("e2e-durable")
        say("state", [len(dd), dd[7], dd["last"]])
    """)
    assert res["state"] == [201, "v7", "acknowledged"]


@pytest.mark.parametrize("fsync", [[], ["--dq-fsync", "always"]], ids=["everysec", "always"])
def test_put_stream_flushes(daemon_factory, fsync):
    """Under everysec a stream of puts is flushed by the tick (about ten a
    second), not by one fdatasync after another; under always each put that
    was answered had its own."""
    d = daemon_factory(fsync)
    d.start()
    before = d.api("GET", "/v1/status").json
    t0 = time.monotonic()
    run_py(d, """
        dd = skiff.Dict.from_name("e2e-stream", create_if_missing=True)
        for i in range(1000):
            dd[i % 50] = "v"
        say("n", len(dd))
    """)
    elapsed = time.monotonic() - t0
    after = d.api("GET", "/v1/status").json
    commits = after["store_commits"] - before["store_commits"]
    flushes = after["store_flushes"] - before["store_flushes"]
    assert commits >= 1000, (before, after)
    if fsync:
        assert flushes >= 1000, (commits, flushes)
    else:
        # One per 100 ms tick of the run, and one for the Dict's creation.
        assert flushes <= 10 * elapsed + 5, (commits, flushes, elapsed)


@pytest.mark.parametrize("value", ["sometimes", "", "Always"])
def test_bad_dq_fsync_is_refused(tmp_path, value):
    p = subprocess.run([SKIFFD, "--home", str(tmp_path), "--listen", "none", "--dq-fsync", value],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "--dq-fsync must be always" in p.stderr and f"got '{value}'" in p.stderr, p.stderr


def test_dict_cli(daemon):
    p = daemon.skiff("dict", "create", "e2e-cli")
    assert p.returncode == 0 and "created dict e2e-cli" in p.stdout, describe(p, daemon)
    p = daemon.skiff("dict", "create", "e2e-cli")
    assert p.returncode == 1 and "exists already" in p.stderr, describe(p, daemon)
    run_py(daemon, """
        d = skiff.Dict.from_name("e2e-cli")
        d["greeting"] = "hello"
        d["n"] = 42
    """)
    p = daemon.skiff("dict", "list")
    assert p.returncode == 0, describe(p, daemon)
    row = [l for l in p.stdout.splitlines() if l.startswith("e2e-cli ")]
    assert row and row[0].split()[2] == "2", p.stdout
    p = daemon.skiff("dict", "get", "e2e-cli", "greeting")
    assert p.returncode == 0 and p.stdout.strip() == "hello", describe(p, daemon)
    p = daemon.skiff("dict", "get", "e2e-cli", "absent")
    assert p.returncode == 1 and "no key 'absent'" in p.stderr, describe(p, daemon)
    p = daemon.skiff("dict", "items", "e2e-cli", "--json")
    assert p.returncode == 0, describe(p, daemon)
    import json
    assert sorted((r["key"], r["value"]) for r in json.loads(p.stdout)) == [("greeting", "hello"), ("n", 42)]
    p = daemon.skiff("dict", "clear", "e2e-cli")
    assert p.returncode == 1 and "--yes" in p.stderr, describe(p, daemon)
    p = daemon.skiff("dict", "clear", "e2e-cli", "--yes")
    assert p.returncode == 0, describe(p, daemon)
    assert daemon.api("GET", "/v1/dicts/e2e-cli/len").json["len"] == 0
    p = daemon.skiff("dict", "delete", "e2e-cli", "--yes")
    assert p.returncode == 0, describe(p, daemon)
    p = daemon.skiff("dict", "get", "e2e-cli", "greeting")
    assert p.returncode == 1 and "no Dict" in p.stderr, describe(p, daemon)


def test_dict_bad_inputs(daemon):
    api = daemon.api
    for name, what in [("bad name", "0x20"), ("a/b", "'/'"), ("x" * 65, "at most 64"), ("", "1 to 64"),
                       ("ü", "0xc3")]:
        r = api("POST", "/v1/dicts", {"name": name, "create_if_missing": True})
        assert r.status == 400 and what in r.json["error"]["message"], (name, r.json)
    r = api("POST", "/v1/dicts", {"name": 5})
    assert r.status == 400 and "name" in r.json["error"]["message"], r.json
    r = api("POST", "/v1/dicts", {"name": "e2e-bad"})
    assert r.status == 404 and "create_if_missing=True" in r.json["error"]["message"], r.json
    r = api("POST", "/v1/dicts", {"name": "e2e-bad", "create_if_missing": True})
    assert r.status == 201, r.json
    path = "/v1/dicts/e2e-bad"
    # wrong types and junk
    for body, what in [({"key": 1}, "key"), ({}, "key"), ({"key": "!!!"}, "base64"), ({"key": ""}, "empty")]:
        r = api("POST", path + "/get", body)
        assert r.status == 400 and what in r.json["error"]["message"], (body, r.json)
    r = api("POST", path + "/put", {"keys": [pk(1), pk(2)], "values": [pk(1)]})
    assert r.status == 400 and "pair up" in r.json["error"]["message"], r.json
    # an oversized value is refused whole: nothing of the batch is stored
    big = pk(b"x" * (1024 * 1024 + 1))
    r = api("POST", path + "/put", {"keys": [pk("small"), pk("big")], "values": [pk(1), big]})
    assert r.status == 413 and "1 MiB" in r.json["error"]["message"], r.json
    assert api("GET", path + "/len").json["len"] == 0
    res = run_py(daemon, """
        d = skiff.Dict.from_name("e2e-bad")
        say("too_big", error_of(lambda: d.put("k", b"x" * (1024 * 1024 + 10))))
        say("unpicklable", error_of(lambda: d.put("k", lambda: 1)))
        say("bad_name", error_of(lambda: skiff.Dict.from_name("no/dict").len()))
        say("name_type", error_of(lambda: skiff.Dict.from_name(5)))
        say("len", len(d))
        skiff.Dict.delete("e2e-bad")
        say("after_delete", error_of(lambda: d.get("k")))
    """)
    assert res["too_big"][0] == "PayloadTooLargeError" and "1 MiB" in res["too_big"][1]
    assert res["unpicklable"][0] == "SerializationError"
    assert res["bad_name"][0] == "InvalidError" and "'/'" in res["bad_name"][1]
    assert res["name_type"][0] == "InvalidError"
    assert res["len"] == 0
    assert res["after_delete"][0] == "NotFoundError" and "no Dict" in res["after_delete"][1]


def test_aio_forms(daemon):
    """Modal's awaitable forms: `await d.get.aio(k)`, `async for` over
    `d.items.aio()` and `q.iterate.aio()`; an event loop keeps running
    while a queue get waits."""
    res = run_py(daemon, """
        import asyncio

        async def main():
            d = skiff.Dict.from_name("e2e-aio", create_if_missing=True)
            await d.put.aio("a", 1)
            await d.update.aio({"b": 2})
            got = [await d.get.aio("a"), await d.contains.aio("b"), await d.len.aio()]
            items = sorted([kv async for kv in d.items.aio()])
            popped = await d.pop.aio("a")
            await d.clear.aio()
            q = skiff.Queue.from_name("e2e-aio-q", create_if_missing=True)
            ticks = []

            async def tick():
                for _ in range(3):
                    ticks.append(1)
                    await asyncio.sleep(0.05)
                await q.put.aio("late")

            t = asyncio.ensure_future(tick())
            late = await q.get.aio(timeout=30)  # waits while tick() runs
            await t
            await q.put_many.aio([1, 2, 3])
            many = await q.get_many.aio(2)
            rest = [x async for x in q.iterate.aio(item_poll_timeout=0.0)]
            return {"got": got, "items": items, "popped": popped, "len_after": await d.len.aio(),
                    "late": late, "ticks": len(ticks), "many": many, "rest": rest,
                    "qlen": await q.len.aio()}

        say("aio", asyncio.run(main()))
    """)
    r = res["aio"]
    assert r["got"] == [1, True, 2] and r["items"] == [["a", 1], ["b", 2]], r
    assert r["popped"] == 1 and r["len_after"] == 0, r
    assert r["late"] == "late" and r["ticks"] == 3, r
    # iterate reads without removing, as in Modal
    assert r["many"] == [1, 2] and r["rest"] == [3] and r["qlen"] == 1, r
