"""An async local entrypoint, as Modal's documentation writes one: it
awaits `.aio` calls and iterates a remote generator asynchronously."""
import asyncio

import modal

app = modal.App("e2e-async-entry")


@app.function()
def square(x: int) -> int:
    return x * x


@app.function()
def count(n: int):
    for i in range(n):
        yield i * 10


@app.local_entrypoint()
async def main(n: int = 3):
    print("plain", await square.remote.aio(n), flush=True)
    both = await asyncio.gather(square.remote.aio(2), square.remote.aio(4))
    print("gather", list(both), flush=True)
    print("gen", [x async for x in count.remote_gen.aio(n)], flush=True)
