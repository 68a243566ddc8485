"""A file written for Modal; `skiff run examples/modal_compat.py` runs it unchanged
(when the real `modal` package is not installed, skiff's shim provides `modal`)."""

import modal

app = modal.App("modal-compat")


@app.function(cpu=0.25, memory=128, retries=modal.Retries(max_retries=2, backoff_coefficient=2.0))
def square(x: int) -> int:
    return x * x


@app.function(timeout=30)
def fail(x: int) -> int:
    raise ValueError(f"bad input {x}")


@app.local_entrypoint()
def main(n: int = 10):
    assert modal.is_local()
    print(square.remote(4))
    print(list(square.map(range(n))))
    try:
        fail.remote(1)
    except ValueError as e:
        print("caught", type(e).__name__, e.args[0])
    results = list(fail.map([1, 2], return_exceptions=True))
    print([type(r).__name__ for r in results])
