"""A local package added with add_local_python_source (test_images_steps.py)."""

MARK = "e2e-imglib-here"


def where():
    return __file__
