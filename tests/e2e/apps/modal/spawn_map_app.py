"""Function.spawn_map: inputs start, the caller does not wait for them;
each writes its result to a Dict that the entrypoint watches."""
import time

import modal

app = modal.App("e2e-spawn-map")
results = modal.Dict.from_name("e2e-spawn-map-results", create_if_missing=True)


@app.function()
def work(i: int, scale: int = 1) -> None:
    results[i] = i * scale


@app.local_entrypoint()
def main(n: int = 5):
    results.clear()
    print("returned", work.spawn_map(range(n), kwargs={"scale": 10}), flush=True)
    print("empty", work.spawn_map([]), flush=True)
    deadline = time.monotonic() + 120
    while len(results) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    print("results", sorted(results.items()), flush=True)
