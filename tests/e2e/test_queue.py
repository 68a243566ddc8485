"""Issue 12: Queues, from the caller and from inside containers; a
producer and a consumer container; blocked gets and puts woken on skiffd's
loop; maxsize; partition expiry; kill -9 of skiffd during a put_many and
during a blocked get; the CLI; every bad input."""

import json
import os
import pickle
import struct
import subprocess
import textwrap
import threading
import time

import pytest
from conftest import DEBIAN_PYTHON, describe, parse_results
from dq_util import DQ_APP, PRELUDE, pk, run_py, unpk


def run_app(daemon, check, name):
    p = daemon.skiff("run", DQ_APP, "--check", check, "--name", name, python=DEBIAN_PYTHON, timeout=240)
    assert p.returncode == 0, describe(p, daemon)
    return parse_results(p.stdout)


def test_queue_in_container(daemon):
    res = run_app(daemon, "queue", "e2e-q1")
    # ephemeral handles passed to a function work there
    assert res["handles"] == [2, 40]
    ops = res["queue_ops"]
    assert ops["len"] == 4 and ops["len_side"] == 1 and ops["len_total"] == 5
    assert ops["iterate"] == [1, 2, 3, 4]
    assert ops["get"] == 1 and ops["get_many"] == [2, 3] and ops["get_side"] == "p"
    assert ops["rest"] == 4 and ops["empty"] == "Empty"
    assert ops["timeout"] >= 0.5
    assert ops["after_clear"] == 0


def test_producer_and_consumer_containers(daemon):
    res = run_app(daemon, "pipe", "e2e-pipe")["pipe"]
    assert res["produced"] == 30
    assert res["consumed"] == list(range(30))


def test_blocked_get_in_container_woken_by_put(daemon):
    res = run_app(daemon, "wake", "e2e-wake")["wake"]
    assert res["item"] == "woken"
    # it waited for the put (made 3 s after the spawn), not for its timeout
    assert 1.0 <= res["waited"] < 60


def test_queue_from_caller(daemon):
    res = run_py(daemon, """
        q = skiff.Queue.from_name("e2e-q2", create_if_missing=True)
        q.put_many(list(range(10)))
        q.put("a", partition="p1")
        q.put("b", partition="p2")
        say("lens", [q.len(), q.len(partition="p1"), q.len(total=True), len(q)])
        say("iterate", list(q.iterate()))
        say("still", q.len())        # iterate does not remove
        say("get_many", q.get_many(4))
        say("get_many_rest", q.get_many(100, block=False))
        say("get_many_empty", q.get_many(3, block=False))
        q.clear(partition="p1")
        say("after_clear_p1", [q.len(partition="p1"), q.len(partition="p2")])
        q.clear(all=True)
        say("after_clear_all", q.len(total=True))
        t0 = time.monotonic()
        say("timeout", [error_of(lambda: q.get(timeout=1.0)), time.monotonic() - t0 >= 1.0])
        say("nonblock", error_of(lambda: q.get(block=False)))
        # a blocked get is woken by a put from another thread
        threading.Timer(0.5, lambda: skiff.Queue.from_name("e2e-q2").put("late")).start()
        say("woken", q.get(timeout=30))
        # iterate waits item_poll_timeout for new items
        threading.Timer(0.5, lambda: skiff.Queue.from_name("e2e-q2").put("next")).start()
        say("iterate_wait", list(q.iterate(item_poll_timeout=5.0)))
        q.clear()
        with skiff.Queue.ephemeral() as e:
            e.put(1)
            say("ephemeral", [e.get(), e.name])
            eid = e.object_id
        say("ephemeral_gone", error_of(lambda: skiff.Queue.from_name(eid).len()) is not None)
        sys.path.append(os.path.join(os.path.dirname(skiff.__file__), "_compat"))
        import modal
        modal.Queue.from_name("e2e-q2").put("m")
        say("modal", q.get())
    """)
    assert res["lens"] == [10, 1, 12, 10]
    assert res["iterate"] == list(range(10)) and res["still"] == 10
    assert res["get_many"] == [0, 1, 2, 3]
    assert res["get_many_rest"] == [4, 5, 6, 7, 8, 9]
    assert res["get_many_empty"] == []
    assert res["after_clear_p1"] == [0, 1]
    assert res["after_clear_all"] == 0
    assert res["timeout"] == [["Empty", ""], True]
    assert res["nonblock"] == ["Empty", ""]
    assert res["woken"] == "late"
    assert res["iterate_wait"] == ["next"]
    assert res["ephemeral"] == [1, None] and res["ephemeral_gone"] is True
    assert res["modal"] == "m"


def test_maxsize_blocks_and_raises(daemon):
    res = run_py(daemon, """
        q = skiff.Queue.from_name("e2e-max", create_if_missing=True, maxsize=2)
        q.put(1)
        q.put(2)
        full = error_of(lambda: q.put(3, block=False))
        say("nonblock", [full[0], "maxsize 2" in full[1]])
        t0 = time.monotonic()
        say("timeout", [error_of(lambda: q.put(3, timeout=0.8))[0], time.monotonic() - t0 >= 0.8])
        # a blocked put goes on when a get makes room
        threading.Timer(0.5, lambda: say("taken", skiff.Queue.from_name("e2e-max").get())).start()
        q.put(3, timeout=30)
        say("after", list(q.iterate()))
        say("too_many", error_of(lambda: q.put_many([4, 5, 6])))
        say("other_partition", error_of(lambda: q.put_many([7, 8], partition="other")))
    """)
    assert res["nonblock"] == ["Full", True]
    assert res["timeout"] == ["Full", True]
    assert res["taken"] == 1
    assert res["after"] == [2, 3]
    assert res["too_many"][0] == "InvalidError" and "at most 2" in res["too_many"][1]
    assert res["other_partition"] is None  # maxsize holds per partition


def test_partitions_expire(daemon_factory):
    d = daemon_factory(["--queue-partition-ttl", "2s", "--retention-interval", "0.2s"])
    d.start()
    res = run_py(d, """
        q = skiff.Queue.from_name("e2e-qttl", create_if_missing=True)
        q.put_many([1, 2], partition="old")
        for i in range(4):            # puts keep a partition alive; gets do not
            time.sleep(0.8)
            q.put(i, partition="busy")
            q.get(partition="busy")
        say("alive", [q.len(partition="old"), q.len(partition="busy")])
        q.put("x", partition="busy")
        time.sleep(2.5)
        say("expired", [q.len(partition="busy"), q.len(total=True), error_of(lambda: q.get(block=False, partition="busy"))])
        q.put("new", partition="busy")
        say("fresh", list(q.iterate(partition="busy")))
    """)
    assert res["alive"] == [0, 0]  # "old" expired 2 s after its only put
    assert res["expired"] == [0, 0, ["Empty", ""]]
    assert res["fresh"] == ["new"]


def _client(daemon, code):
    return subprocess.Popen([DEBIAN_PYTHON, "-c", PRELUDE + textwrap.dedent(code)], env=daemon.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# What a put acknowledged survives kill -9 of skiffd under both --dq-fsync
# modes: everysec answers once the commit is in the page cache, which a
# killed process does not lose.
@pytest.mark.parametrize("fsync", [[], ["--dq-fsync", "always"]], ids=["everysec", "always"])
def test_kill9_during_put_many(daemon_factory, fsync):
    d = daemon_factory(fsync)
    d.start()
    run_py(d, 'skiff.Queue.from_name("e2e-q9", create_if_missing=True).hydrate()')
    batches, size = 1000, 4
    proc = _client(d, f"""
        q = skiff.Queue.from_name("e2e-q9")
        for b in range({batches}):
            q.put_many([b * {size} + i for i in range({size})])
            print("acked", b, flush=True)
    """)
    try:
        acked = 0
        while acked < 20:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            acked += 1
        assert proc.poll() is None, "the puts ended before the kill; make them more"
        d.kill9()
        time.sleep(0.5)
        d.start()
        out, err = proc.communicate(timeout=120)
        assert f"acked {batches - 1}" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    res = run_py(d, """
        q = skiff.Queue.from_name("e2e-q9")
        say("items", q.get_many(5000, block=False))
    """)
    # every batch once, in order, whole: the put resent after the kill was
    # recognised by its put id when its first try had been stored
    assert res["items"] == list(range(batches * size))


def test_kill9_during_blocked_get(daemon_factory):
    d = daemon_factory()
    d.start()
    run_py(d, """
        q = skiff.Queue.from_name("e2e-qget", create_if_missing=True)
        q.put_many(["before-1", "before-2"])
        assert q.get() == "before-1"
    """)
    proc = _client(d, """
        q = skiff.Queue.from_name("e2e-qget")
        say("first", q.get(timeout=5))
        print("waiting", flush=True)
        say("second", q.get(timeout=120))
    """)
    try:
        assert proc.stdout.readline().startswith("@@ first")
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(1.0)  # the get is parked in skiffd now
        d.kill9()
        time.sleep(0.5)
        d.start()
        run_py(d, 'skiff.Queue.from_name("e2e-qget").put("after-restart")')
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert parse_results(out)["second"] == "after-restart"
    assert d.api("GET", "/v1/queues/e2e-qget/len").json["len"] == 0


def test_queue_cli(daemon):
    p = daemon.skiff("queue", "create", "e2e-qcli", "--maxsize", "10")
    assert p.returncode == 0, describe(p, daemon)
    p = daemon.skiff("queue", "create", "e2e-qcli")
    assert p.returncode == 1 and "exists already" in p.stderr, describe(p, daemon)
    p = daemon.skiff("queue", "create", "e2e-qcli2", "--maxsize", "x")
    assert p.returncode == 2 and "--maxsize" in p.stderr, describe(p, daemon)
    run_py(daemon, """
        q = skiff.Queue.from_name("e2e-qcli")
        q.put_many(["one", "two", "three"])
        q.put("p", partition="side")
    """)
    p = daemon.skiff("queue", "list")
    row = [l.split() for l in p.stdout.splitlines() if l.startswith("e2e-qcli ")]
    assert row and row[0][2] == "4" and row[0][3] == "10", p.stdout
    assert daemon.skiff("queue", "len", "e2e-qcli").stdout.strip() == "3"
    assert daemon.skiff("queue", "len", "e2e-qcli", "--partition", "side").stdout.strip() == "1"
    assert daemon.skiff("queue", "len", "e2e-qcli", "--total").stdout.strip() == "4"
    p = daemon.skiff("queue", "peek", "e2e-qcli", "2")
    assert p.returncode == 0 and p.stdout.split() == ["one", "two"], describe(p, daemon)
    assert daemon.skiff("queue", "len", "e2e-qcli").stdout.strip() == "3"  # peek removes nothing
    p = daemon.skiff("queue", "clear", "e2e-qcli", "--partition", "side", "--yes")
    assert p.returncode == 0, describe(p, daemon)
    assert daemon.skiff("queue", "len", "e2e-qcli", "--total").stdout.strip() == "3"
    p = daemon.skiff("queue", "clear", "e2e-qcli", "--all", "--partition", "x", "--yes")
    assert p.returncode == 2, describe(p, daemon)
    p = daemon.skiff("queue", "clear", "e2e-qcli", "--all", "--yes")
    assert p.returncode == 0, describe(p, daemon)
    assert daemon.skiff("queue", "len", "e2e-qcli", "--total").stdout.strip() == "0"
    p = daemon.skiff("queue", "delete", "e2e-qcli", "--yes")
    assert p.returncode == 0, describe(p, daemon)
    p = daemon.skiff("queue", "len", "e2e-qcli")
    assert p.returncode == 1 and "no Queue" in p.stderr, describe(p, daemon)


def test_queue_bad_inputs(daemon):
    api = daemon.api
    r = api("POST", "/v1/queues", {"name": "e2e-qbad", "create_if_missing": True})
    assert r.status == 201, r.json
    path = "/v1/queues/e2e-qbad"
    for name, what in [("a b", "0x20"), ("q:1", "':'"), ("q" * 65, "at most 64")]:
        r = api("POST", "/v1/queues", {"name": name, "create_if_missing": True})
        assert r.status == 400 and what in r.json["error"]["message"], (name, r.json)
    for maxsize in (-1, 5001):
        r = api("POST", "/v1/queues", {"name": "e2e-qm", "create_if_missing": True, "maxsize": maxsize})
        assert r.status == 400 and "maxsize" in r.json["error"]["message"], r.json
    cases = [
        ("put", {"values": "x"}, 400, "values"),
        ("put", {"values": []}, 400, "1 to 5000"),
        ("put", {"values": [1]}, 400, "base64"),
        ("put", {"values": [pk(1)], "partition": ""}, 400, "1 to 64"),
        ("put", {"values": [pk(1)], "partition": "p" * 65}, 400, "1 to 64"),
        ("put", {"values": [pk(1)], "partition": "a\nb"}, 400, "control"),
        ("put", {"values": [pk(1)], "partition": 3}, 400, "partition"),
        ("put", {"values": [pk(1)], "wait": 61}, 400, "wait"),
        ("put", {"values": [pk(1)], "extra": 1}, 400, "extra"),
        ("get", {"n": 0}, 400, "n must be"),
        ("get", {"n": "1"}, 400, "n"),
        ("get", {"wait": -1}, 400, "wait"),
    ]
    for op, body, status, what in cases:
        r = api("POST", f"{path}/{op}", body)
        assert r.status == status and what in r.json["error"]["message"], (op, body, r.json)
    # an oversized item is refused with the whole batch
    big = pk(b"x" * (1024 * 1024 + 1))
    r = api("POST", f"{path}/put", {"values": [pk("small"), big]})
    assert r.status == 413 and "1 MiB" in r.json["error"]["message"], r.json
    assert api("GET", f"{path}/len").json["len"] == 0
    # the partition limit, named in the error
    r = api("POST", f"{path}/put", {"values": [pk(i) for i in range(5000)]})
    assert r.status == 200, r.json
    r = api("POST", f"{path}/put", {"values": [pk("one more")]})
    assert r.status == 507 and "5000 items per partition" in r.json["error"]["message"], r.json
    assert api("GET", f"{path}/len").json["len"] == 5000
    r = api("POST", f"{path}/put", {"values": [pk(1)] * 5001, "partition": "p"})
    assert r.status == 400 and "5000" in r.json["error"]["message"], r.json
    res = run_py(daemon, """
        q = skiff.Queue.from_name("e2e-qbad")
        say("too_big", error_of(lambda: q.put(b"x" * (1024 * 1024 + 10), partition="p")))
        say("unpicklable", error_of(lambda: q.put(lambda: 1, partition="p")))
        say("partition_type", error_of(lambda: q.put(1, partition=5)))
        say("timeout_type", error_of(lambda: q.get(timeout="soon")))
        say("len_both", error_of(lambda: q.len(partition="p", total=True)))
        say("maxsize_type", error_of(lambda: skiff.Queue.from_name("x", maxsize=-2)))
        q.clear()
        # a get waiting on a queue that is deleted fails with NotFoundError
        box = {}
        t = threading.Thread(target=lambda: box.update(e=error_of(lambda: q.get(timeout=30))))
        t.start()
        time.sleep(1.0)
        skiff.Queue.delete("e2e-qbad")
        t.join(30)
        say("parked_get_deleted", box.get("e"))
        say("after_delete", error_of(lambda: q.put(1)))
    """)
    assert res["too_big"][0] == "PayloadTooLargeError" and "1 MiB" in res["too_big"][1]
    assert res["unpicklable"][0] == "SerializationError"
    assert res["partition_type"][0] == "InvalidError"
    assert res["timeout_type"][0] == "InvalidError"
    assert res["len_both"][0] == "InvalidError"
    assert res["maxsize_type"][0] == "InvalidError"
    assert res["parked_get_deleted"][0] == "NotFoundError" and "no Queue" in res["parked_get_deleted"][1]
    assert res["after_delete"][0] == "NotFoundError"


def frames(opts, *items):
    """A frames body (docs/api.md): options, then the items."""
    parts = [json.dumps(opts).encode()] + list(items)
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


FRAMES = {"Content-Type": "application/x-skiff-frames"}


def test_frames_bodies_and_answers(daemon):
    """The binary form of Dict and Queue writes and of a Queue get: what the
    SDK sends; every malformed body is refused whole, with what was wrong."""
    api = daemon.api
    assert api("POST", "/v1/queues", {"name": "e2e-qfr", "create_if_missing": True}).status == 201
    assert api("POST", "/v1/dicts", {"name": "e2e-dfr", "create_if_missing": True}).status == 201
    q, d = "/v1/queues/e2e-qfr", "/v1/dicts/e2e-dfr"
    one, two = pickle.dumps("one", protocol=5), pickle.dumps(2, protocol=5)
    cases = [
        (q, frames({}, one)[:-1], 400, "frame 1 runs past the end"),
        (q, b"\x00\x00", 400, "frame of options"),
        (q, frames({}), 400, "0 item frames"),
        (q, frames({}, b""), 400, "values[0] (frame 1) is empty"),
        (q, frames({"values": [1]}, one), 400, "values"),
        (q, frames({"partition": ""}, one), 400, "1 to 64"),
        (q, frames({"wait": 61}, one), 400, "wait"),
        (q, frames([1], one), 400, "object"),
        (q, frames({}, one, b"x" * (1024 * 1024 + 1)), 413, "1 MiB"),
        (d, frames({}, one), 400, "pairs of a key and its value"),
        (d, frames({"skip_if_exists": "yes"}, one, two), 400, "skip_if_exists"),
    ]
    for path, body, status, what in cases:
        r = api("POST", f"{path}/put", raw=body, headers=FRAMES)
        assert r.status == status and what in r.json["error"]["message"], (path, body[:40], r.json)
    assert api("GET", f"{q}/len").json["len"] == 0
    assert api("GET", f"{d}/len").json["len"] == 0
    # good bodies, and a get answered in frames when it asks
    r = api("POST", f"{q}/put", raw=frames({"put_id": "p1"}, one, two), headers=FRAMES)
    assert r.status == 200 and r.json["stored"] == 2, r.json
    r = api("POST", f"{d}/put", raw=frames({}, one, two), headers=FRAMES)
    assert r.status == 200 and r.json["stored"] == 1, r.json
    assert unpk(api("POST", f"{d}/get", {"key": pk("one")}).json["value"]) == 2
    r = api("POST", f"{q}/get", {"n": 5}, headers={"Accept": "application/x-skiff-frames"})
    assert r.status == 200 and r.headers["content-type"] == "application/x-skiff-frames", r.headers
    body, parts = r.body, []
    while body:
        (n,) = struct.unpack(">I", body[:4])
        parts.append(body[4:4 + n])
        body = body[4 + n:]
    assert json.loads(parts[0])["last"] > 0
    assert [pickle.loads(p) for p in parts[1:]] == ["one", 2]
    assert api("GET", f"{q}/len").json["len"] == 0


def test_one_request_waits_and_is_woken_by_a_put(daemon):
    """The long poll itself, over the bare API: one get request waits in
    skiffd until a put on its partition (another connection) wakes it; a
    put on another partition does not."""
    api = daemon.api
    assert api("POST", "/v1/queues", {"name": "e2e-qlp", "create_if_missing": True}).status == 201
    box = {}

    def get():
        t0 = time.monotonic()
        r = api("POST", "/v1/queues/e2e-qlp/get", {"wait": 30, "partition": "p"}, timeout=60)
        box.update(status=r.status, json=r.json, waited=time.monotonic() - t0)

    t = threading.Thread(target=get)
    t.start()
    time.sleep(0.5)
    assert api("POST", "/v1/queues/e2e-qlp/put", {"values": [pk("other")], "partition": "q"}).status == 200
    time.sleep(0.5)
    assert t.is_alive(), box  # still waiting: that put was for another partition
    assert api("POST", "/v1/queues/e2e-qlp/put", {"values": [pk("mine")], "partition": "p"}).status == 200
    t.join(30)
    assert box["status"] == 200 and [unpk(v) for v in box["json"]["values"]] == ["mine"], box
    assert box["waited"] < 30
    # a wait that ends answers an empty list, not an error
    r = api("POST", "/v1/queues/e2e-qlp/get", {"wait": 0.3, "partition": "p"})
    assert r.status == 200 and r.json["values"] == [], r.json
