"""An entrypoint that is an async generator: skiff runs it to its end."""
import modal

app = modal.App("e2e-async-gen-entry")


@app.function()
def double(x: int) -> int:
    return 2 * x


@app.local_entrypoint()
async def main():
    for i in range(3):
        print("step", await double.remote.aio(i), flush=True)
        yield i
