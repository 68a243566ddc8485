"""A script in the style of Modal's documentation, started as
`python script_app.py` (or `python -m`): it imports `modal` itself and runs
its app with `app.run()`; deploys with the name positional, as older code
does; and looks up an app by name."""
import sys

import modal
from modal.functions import FunctionCall

app = modal.App("e2e-script")


@app.function()
def square(x: int) -> int:
    return x * x


def main() -> None:
    print("modal is skiff", getattr(modal, "__skiff__", None) is not None, flush=True)
    with modal.enable_output():
        with app.run():
            print("square", square.remote(7), flush=True)
            call = square.spawn(5)
            print("from_id", FunctionCall.from_id(call.object_id).get(timeout=120), flush=True)
    if "--deploy" in sys.argv:
        app.deploy("e2e-script-deployed")
        f = modal.Function.from_name("e2e-script-deployed", "square")
        print("deployed", f.remote(3), flush=True)
        looked = modal.App.lookup("e2e-script-lookup", create_if_missing=True)
        print("lookup", looked.name, flush=True)


if __name__ == "__main__":
    main()
