import sys, skiff

app = skiff.App("hello")

@app.function(cpu=0.5, memory=256, timeout=60, retries=2)
def f(i):
    if i % 2 == 0:
        print("hello", i)
    else:
        print("world", i, file=sys.stderr)
    return i * i

@app.function()
def gen(n):
    for j in range(n):
        yield j

@app.local_entrypoint()
def main(n: int = 200):
    print(f.local(1000))
    print(f.remote(1000))
    print(sum(f.map(range(n))))
    print(list(gen.remote_gen(5)))
    call = f.spawn(7)
    print(call.get(timeout=30))
