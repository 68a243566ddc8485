"""Payloads over the limit are refused before anything is sent.

A real Unix-socket server records every request: after the app is
registered, no call or input request may reach it."""

import pytest

import skiff
from skiff.exception import InvalidError, PayloadTooLargeError

app = skiff.App("payload-test")


@app.function()
def echo(x):
    return x


def _call_paths(server):
    return [p for p in server.paths() if p.startswith("/v1/functions/") or p.startswith("/v1/calls/")]


def test_remote_refuses_large_arguments(recording_server, skiff_env):
    server = recording_server(max_payload=10_000)
    skiff_env(server.url)
    with app.run():
        assert echo.object_id == "fu-0"
        with pytest.raises(PayloadTooLargeError) as ei:
            echo.remote(b"x" * 20_000)
        msg = str(ei.value)
        assert "10000 bytes" in msg and "over the payload limit" in msg and "Volume" in msg
        assert isinstance(ei.value, InvalidError) and isinstance(ei.value, ValueError)
        with pytest.raises(PayloadTooLargeError):
            echo.spawn(x=b"x" * 20_000)
        with pytest.raises(PayloadTooLargeError):
            list(echo.map([b"y" * 20_000]))
        assert _call_paths(server) == []
    paths = server.paths()
    assert paths[0] == "/v1/status"
    assert "/v1/apps" in paths and "/v1/apps/ap-test/stop" in paths
    assert _call_paths(server) == []


def test_env_override_of_the_limit(recording_server, skiff_env, monkeypatch):
    server = recording_server()
    skiff_env(server.url)
    monkeypatch.setenv("SKIFF_MAX_PAYLOAD_MB", "1")
    with app.run():
        with pytest.raises(PayloadTooLargeError, match="1048576 bytes"):
            echo.remote(b"z" * (2 << 20))
    assert _call_paths(server) == []


def test_registration_request(recording_server, skiff_env):
    server = recording_server()
    skiff_env(server.url)
    with app.run():
        pass
    create = [b for m, p, b in server.requests if p == "/v1/apps"][0]
    assert create["name"] == "payload-test" and create["ephemeral"] is True
    assert [f["name"] for f in create["functions"]] == ["echo"]
    fn = create["functions"][0]
    assert fn["module"] == __name__.rpartition(".")[2] or fn["module"] == __name__
    assert fn["qualname"] == "echo" and fn["is_generator"] is False
    paths = [f["path"] for f in create["files"]]
    assert "test_payload.py" in paths
    assert all(len(f["sha256"]) == 64 and isinstance(f["mode"], int) for f in create["files"])
    missing = [b for m, p, b in server.requests if p == "/v1/blobs/missing"][0]
    assert sorted(missing["sha256"]) == sorted({f["sha256"] for f in create["files"]})
    # the function is not hydrated once the app stopped
    with pytest.raises(skiff.exception.ExecutionError, match="not hydrated"):
        echo.remote(1)
