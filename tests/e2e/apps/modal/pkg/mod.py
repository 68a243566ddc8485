"""Started as `python -m pkg.mod`: the app runs from a module of a package."""
import modal

app = modal.App("e2e-pkg-mod")


@app.function()
def hello(name: str) -> str:
    return f"hello {name}"


if __name__ == "__main__":
    with app.run():
        print(hello.remote("pkg"), flush=True)
