"""Test app for test_dict.py and test_queue.py: Dicts and Queues used from
inside containers (and, in the entrypoint, from the caller).

The entrypoint runs the check named by --check and prints `@@ NAME JSON`
lines that the tests read.
"""
import json
import queue
import time

import skiff


def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\n").encode())


app = skiff.App("e2e-dq")

# a handle made at import time: looked up on first use, in each container
shared = skiff.Dict.from_name("e2e-dq-shared", create_if_missing=True)


@app.function()
def dict_ops(name):
    d = skiff.Dict.from_name(name, create_if_missing=True)
    out = {}
    d["a"] = {"x": 1}
    d.put(("t", 1), [1, 2, 3])
    out["get"] = d["a"]
    out["get_default"] = d.get("missing", "dflt")
    out["skip"] = d.put("a", "other", skip_if_exists=True)
    out["after_skip"] = d["a"]
    out["contains"] = [("t", 1) in d, "nope" in d]
    d.update({"u1": 1, "u2": 2}, u3=3)
    out["len"] = len(d)
    out["keys"] = sorted(repr(k) for k in d.keys())
    out["values"] = sorted(repr(v) for v in d.values())
    out["pop"] = d.pop("u1")
    try:
        d.pop("u1")
        out["pop_missing"] = "no error"
    except KeyError:
        out["pop_missing"] = "KeyError"
    try:
        d["nope"]
        out["getitem_missing"] = "no error"
    except KeyError:
        out["getitem_missing"] = "KeyError"
    out["len_after_pop"] = d.len()
    shared["from_container"] = "hello"
    return out


@app.function()
def dict_read(name, key):
    return skiff.Dict.from_name(name).get(key, "absent")


@app.function()
def queue_ops(name):
    q = skiff.Queue.from_name(name, create_if_missing=True)
    out = {}
    q.put(1)
    q.put_many([2, 3, 4])
    q.put("p", partition="side")
    out["len"] = q.len()
    out["len_side"] = q.len(partition="side")
    out["len_total"] = q.len(total=True)
    out["iterate"] = list(q.iterate())
    out["get"] = q.get()
    out["get_many"] = q.get_many(2)
    out["get_side"] = q.get(partition="side")
    out["rest"] = q.get(block=False)
    try:
        q.get(block=False)
        out["empty"] = "no error"
    except queue.Empty:
        out["empty"] = "Empty"
    t0 = time.monotonic()
    try:
        q.get(timeout=0.5)
        out["timeout"] = "no error"
    except queue.Empty:
        out["timeout"] = round(time.monotonic() - t0, 1)
    q.put_many([7, 8])
    q.clear()
    out["after_clear"] = q.len()
    return out


@app.function()
def produce(name, n):
    q = skiff.Queue.from_name(name)
    for i in range(n):
        q.put({"i": i})
        time.sleep(0.02)
    q.put(None)
    return n


@app.function()
def consume(name):
    q = skiff.Queue.from_name(name)
    got = []
    while True:
        item = q.get(timeout=60)
        if item is None:
            return got
        got.append(item["i"])


@app.function()
def wait_get(name, timeout):
    q = skiff.Queue.from_name(name)
    t0 = time.monotonic()
    try:
        return {"item": q.get(timeout=timeout), "waited": time.monotonic() - t0}
    except queue.Empty:
        return {"item": "Empty", "waited": time.monotonic() - t0}


@app.function()
def use_handles(d, q):
    # handles passed as arguments: looked up again in the container
    d["seen"] = d.get("given") + 1
    q.put(q.get() * 10)
    return True


@app.local_entrypoint()
def main(check: str = "dict", name: str = "e2e-dq"):
    if check == "dict":
        say("@@ dict_ops", json.dumps(dict_ops.remote(name)))
        d = skiff.Dict.from_name(name)
        # what the container wrote, read by the caller, and back
        say("@@ caller_reads", json.dumps([d["a"], d.get("u2"), len(d)]))
        d["from_caller"] = [1, "two"]
        say("@@ container_reads", json.dumps(dict_read.remote(name, "from_caller")))
        say("@@ shared", json.dumps(shared.get("from_container")))
    elif check == "queue":
        say("@@ queue_ops", json.dumps(queue_ops.remote(name)))
        with skiff.Dict.ephemeral({"given": 1}) as d, skiff.Queue.ephemeral() as q:
            q.put(4)
            use_handles.remote(d, q)
            say("@@ handles", json.dumps([d["seen"], q.get(timeout=10)]))
    elif check == "pipe":
        q = skiff.Queue.from_name(name, create_if_missing=True)
        q.clear(all=True)  # makes it, before the containers look it up
        consumer = consume.spawn(name)
        producer = produce.spawn(name, 30)
        say("@@ pipe", json.dumps({"produced": producer.get(), "consumed": consumer.get()}))
    elif check == "wake":
        q = skiff.Queue.from_name(name, create_if_missing=True).hydrate()
        call = wait_get.spawn(name, 60)
        time.sleep(3.0)
        q.put("woken")
        say("@@ wake", json.dumps(call.get()))
