"""Names from older Modal code: Stub, checkpointing_enabled, memory
snapshots, and @modal.batched on a class method without @modal.method()."""
import modal

stub = modal.Stub("e2e-old-names")


@stub.function(checkpointing_enabled=True)
def old(x: int) -> int:
    return x + 1


@stub.function(enable_memory_snapshot=True)
def snap(x: int) -> int:
    return x + 2


@stub.cls()
class Batcher:
    @modal.batched(max_batch_size=4, wait_ms=100)
    def double(self, xs: list) -> list:
        return [2 * x for x in xs]


@stub.local_entrypoint()
def main():
    print("old", old.remote(1), flush=True)
    print("snap", snap.remote(1), flush=True)
    print("batched", list(Batcher().double.map([1, 2, 3])), flush=True)
