"""A deployed app with a schedule, for tests/e2e/test_schedules.py. The
tests copy it and replace SCHEDULE (a skiff.Period or skiff.Cron
expression, or None) and TAG."""

import time

import skiff

app = skiff.App("APP_NAME")


@app.function(schedule=SCHEDULE, scaledown_window=60)
def tick():
    print(f"tick TAG {time.time():.3f}", flush=True)
    return "TAG"


@app.function()
def plain(x=1):
    return x
