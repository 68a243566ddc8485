"""An app (no tests) deployed by tests/sdk/test_deploy.py."""

import skiff

app = skiff.App("deploy-me")


@app.function()
def square(x):
    return x * x
