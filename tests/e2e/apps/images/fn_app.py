"""test_images_cache.py: what moves the key of a run_function step (the test edits a copy of this file).

E2E_SALT makes the image new, E2E_WORD is the function's kwargs.
"""
import os

import skiff

SALT = os.environ.get("E2E_SALT", "nosalt")
WORD = os.environ.get("E2E_WORD", "word")


def prepare(word):
    with open("/prepared.txt", "w") as f:
        f.write("prepared " + word)


image = skiff.Image.debian_slim().run_commands(f"echo {SALT} > /salt.txt").run_function(prepare, kwargs={"word": WORD})
