"""Image.from_dockerfile: each instruction, continuations, JSON forms, refusals."""

import hashlib
import os
import textwrap

import pytest

from skiff import Image
from skiff._image_build import resolve
from skiff.exception import InvalidError


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def ctx(tmp_path):
    c = tmp_path / "ctx"
    (c / "src" / "pkg").mkdir(parents=True)
    (c / "app.py").write_bytes(b"print('app')\n")
    (c / "src" / "main.py").write_bytes(b"M")
    (c / "src" / "pkg" / "x.py").write_bytes(b"X")
    (c / "src" / "notes.tmp").write_bytes(b"T")
    return c


def image_of(ctx, text, **kw):
    (ctx / "Dockerfile").write_text(textwrap.dedent(text))
    return Image.from_dockerfile(str(ctx / "Dockerfile"), **kw)


def refused(ctx, text, *needles):
    with pytest.raises(InvalidError) as ei:
        image_of(ctx, text)
    msg = str(ei.value)
    for n in needles:
        assert n in msg, msg
    return msg


def test_full_dockerfile(ctx):
    img = image_of(ctx, """\
        # syntax=docker/dockerfile:1
        FROM python:3.11-slim AS base

        ENV A=1 B="two words" \\
            C='single $A'
        ENV LEGACY value with spaces
        ENV PATH=/opt/bin:$PATH D=${A}-$B E=${NOPE:-dflt} F=${A:+set}
        WORKDIR /app
        WORKDIR sub
        RUN apt-get update && \\
            # a comment inside the continuation
            apt-get install -y jq
        RUN ["echo", "hello world", "it's"]
        COPY app.py ./
        COPY ["src/main.py", "/opt/main.py"]
        ADD src/pkg /opt/pkg
    """)
    r = resolve(img)
    assert r.base == {"kind": "registry", "ref": "python:3.11-slim"}
    s = r.steps
    assert s[0] == {"type": "env", "env": {"A": "1", "B": "two words", "C": "single $A"}}
    assert s[1] == {"type": "env", "env": {"LEGACY": "value with spaces"}}
    assert s[2] == {"type": "env", "env": {
        "PATH": "/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "D": "1-two words", "E": "dflt", "F": "set"}}
    assert s[3] == {"type": "workdir", "path": "/app"}
    assert s[4] == {"type": "workdir", "path": "/app/sub"}
    assert s[5] == {"type": "run_commands", "commands": ["apt-get update &&     apt-get install -y jq"]}
    assert s[6] == {"type": "run_commands", "commands": ["echo 'hello world' 'it'\"'\"'s'"]}
    assert s[7]["type"] == "copy" and s[7]["dst"] == "/app/sub/app.py"
    assert s[7]["files"][0]["path"] == "" and s[7]["files"][0]["sha256"] == _sha(b"print('app')\n")
    assert s[8]["dst"] == "/opt/main.py" and s[8]["files"][0]["sha256"] == _sha(b"M")
    assert s[9]["dst"] == "/opt/pkg" and [f["path"] for f in s[9]["files"]] == ["x.py"]
    assert len(s) == 10
    assert set(r.blobs) == {_sha(b"print('app')\n"), _sha(b"M"), _sha(b"X")}


def test_copy_dir_contents_glob_and_dockerignore(ctx):
    (ctx / ".dockerignore").write_text("# comment\nsrc/*.tmp\n**/pkg\n")
    r = resolve(image_of(ctx, """\
        FROM debian:bookworm
        COPY src /srv/
        COPY src/*.py app.py /bin2/
    """))
    assert r.steps[0]["dst"] == "/srv" and [f["path"] for f in r.steps[0]["files"]] == ["main.py"]
    assert [(s["dst"], s["files"][0]["path"]) for s in r.steps[1:]] == [("/bin2/main.py", ""), ("/bin2/app.py", "")]


def test_context_dir_and_later_steps(ctx, tmp_path):
    df = tmp_path / "Dockerfile.other"
    df.write_text("FROM x/y:1\nCOPY app.py /a.py\n")
    img = Image.from_dockerfile(df, context_dir=ctx).pip_install("numpy")
    r = resolve(img)
    assert [s["type"] for s in r.steps] == ["copy", "pip_install"]
    assert r.steps[0]["files"][0]["sha256"] == _sha(b"print('app')\n")


def test_workdir_carries_into_later_methods(ctx):
    (ctx / "f").write_text("x")
    img = image_of(ctx, "FROM x\nWORKDIR /app\n").add_local_file(str(ctx / "f"), "f")
    assert resolve(img).mounts[0]["dst"] == "/app/f"


def test_registry_options(ctx):
    img = image_of(ctx, "FROM 127.0.0.1:5000/team/img:tag\n", insecure=True)
    assert resolve(img).base == {"kind": "registry", "ref": "127.0.0.1:5000/team/img:tag", "insecure": True}


@pytest.mark.parametrize("instr", ["ARG V=1", "CMD [\"python\"]", "ENTRYPOINT [\"x\"]", "EXPOSE 80", "USER nobody",
                                   "LABEL a=b", "VOLUME /data", "HEALTHCHECK NONE", "SHELL [\"/bin/bash\"]",
                                   "ONBUILD RUN x", "STOPSIGNAL 9", "MAINTAINER me"])
def test_other_instructions_refused_with_line_number(ctx, instr):
    name = instr.split()[0]
    msg = refused(ctx, f"FROM x\n\n# c\nRUN true\n{instr}\n", "line 5", f"{name} is not supported")
    assert "FROM (one stage), RUN, COPY, ADD (local files and directories), ENV and WORKDIR" in msg


def test_line_number_is_the_first_line_of_a_continued_instruction(ctx):
    refused(ctx, "FROM x\nRUN a \\\n  b\nEXPOSE \\\n  80\n", "line 4", "EXPOSE")


def test_from_rules(ctx):
    refused(ctx, "RUN x\nFROM y\n", "line 1", "RUN comes before FROM")
    refused(ctx, "FROM scratch\n", "line 1", "FROM scratch is not supported")
    refused(ctx, "FROM a AS b\nRUN x\nFROM c\n", "line 3", "multi-stage")
    refused(ctx, "FROM --platform=linux/amd64 a\n", "line 1", "--platform")
    refused(ctx, "# only a comment\n\n", "no instructions")


def test_copy_refusals(ctx, tmp_path):
    (tmp_path / "outside.txt").write_text("o")
    refused(ctx, "FROM x\nCOPY ../outside.txt /o\n", "line 2", "outside the build context")
    refused(ctx, "FROM x\nCOPY /etc/passwd /o\n", "line 2", "absolute path")
    refused(ctx, "FROM x\nCOPY --from=build /a /b\n", "line 2", "multi-stage")
    refused(ctx, "FROM x\nCOPY --chown=1:1 app.py /b\n", "line 2", "--chown=1:1 is not supported")
    refused(ctx, "FROM x\nCOPY nope.txt /b\n", "line 2", "does not exist")
    refused(ctx, "FROM x\nCOPY app.py src/main.py /b\n", "line 2", "ending in '/'")
    refused(ctx, "FROM x\nCOPY app.py\n", "line 2", "source and a destination")
    refused(ctx, "FROM x\nADD https://example.com/f.tgz /f\n", "line 2", "URL", "RUN")
    (ctx / "a.tar.gz").write_bytes(b"")
    refused(ctx, "FROM x\nADD a.tar.gz /f\n", "line 2", "archive")
    refused(ctx, "FROM x\nENV X=$UNSET\n", "line 2", "$UNSET", "write the value in full")


def test_symlinks_escaping_the_context(ctx, tmp_path):
    (tmp_path / "secret").write_text("s")
    os.symlink("../secret", ctx / "link")
    refused(ctx, "FROM x\nCOPY link /l\n", "line 2", "link is a symlink that points outside the build context")
    os.unlink(ctx / "link")
    os.symlink(str(ctx / "app.py"), ctx / "abs")
    refused(ctx, "FROM x\nCOPY abs /l\n", "line 2", "symlink to an absolute path")
    os.unlink(ctx / "abs")
    os.symlink("../../../secret", ctx / "src" / "pkg" / "bad")
    with pytest.raises(InvalidError, match="bad is a symlink pointing outside"):
        resolve(image_of(ctx, "FROM x\nCOPY src /s\n"))
    os.unlink(ctx / "src" / "pkg" / "bad")
    # A symlink inside the copied directory that points elsewhere in the context is followed.
    os.symlink("../../app.py", ctx / "src" / "pkg" / "ok.py")
    r = resolve(image_of(ctx, "FROM x\nCOPY src/pkg /s\n"))
    assert {f["path"]: f["sha256"] for f in r.steps[0]["files"]}["ok.py"] == _sha(b"print('app')\n")


def test_missing_dockerfile(tmp_path):
    with pytest.raises(InvalidError, match="no such file"):
        Image.from_dockerfile(str(tmp_path / "Dockerfile"))


def test_json_forms_must_be_string_lists(ctx):
    refused(ctx, "FROM x\nRUN [\"a\", 1]\n", "line 2", "list of strings")
    refused(ctx, "FROM x\nRUN [\"a\"\n", "line 2", "not valid JSON")
