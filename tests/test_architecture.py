"""What the import contracts cannot see: nothing but the web reads a request, and the core reads no file.

The import contracts in pyproject.toml (checked by ``lint-imports`` in scripts/test.sh) keep each
layer from importing the ones above it; they cannot see which names of Flask a module takes, so
this test reads every module of the core, the store, the services and the CLI for the request's
own objects, however they are imported: what a service or a command does depends only on its arguments.

Nor can they see a call: the core is pure, over bytes and values, and a file is read or written
by a service (district files: ``mapsvc.services.boundaries``). As far as is cheaply checkable,
this test reads every module of the core for a module that is about files, or a call by a name
that opens, reads or writes one. It cannot follow a path handed to a library (``savefig(path)``),
so it keeps honest code honest rather than proving anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mapsvc"
WITHOUT_A_REQUEST = ("core", "store", "services", "cli")
REQUEST_NAMES = {"request", "g", "session", "request_ctx", "has_request_context"}
#: Modules that are about files (or, for sqlite3, a database that may be one); ``io`` is not,
#: for its in-memory buffers, nor ``pathlib``, until a path is read or written.
FILE_MODULES = {"os", "tempfile", "shutil", "glob", "fileinput", "mmap", "sqlite3", "zipfile", "tarfile"}
#: Calls, as functions or methods, that open, read, write or list files (``open``, ``Path.read_text``,
#: geopandas' ``read_file`` and ``to_file``, ...).
FILE_CALLS = {
    "open",
    "read_bytes",
    "read_text",
    "write_bytes",
    "write_text",
    "read_file",
    "to_file",
    "mkdir",
    "touch",
    "unlink",
    "rmdir",
    "iterdir",
    "glob",
    "rglob",
}


def _modules(layers: tuple[str, ...] = WITHOUT_A_REQUEST) -> list[Path]:
    return sorted(p for layer in layers for p in (PACKAGE / layer).rglob("*.py"))


def request_uses(source: str) -> list[str]:
    """Return the request objects of Flask a module's source takes, as ``line: name``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in ("flask", "flask.globals", "flask.ctx"):
            found += [f"{node.lineno}: flask.{a.name}" for a in node.names if a.name in REQUEST_NAMES]
        taken = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "flask"
        if taken and node.attr in REQUEST_NAMES:
            found.append(f"{node.lineno}: flask.{node.attr}")
    return found


def test_the_reader_finds_each_way_of_taking_the_request():
    source = "from flask import current_app, request\nimport flask\nflask.g.x = 1\nfrom flask import session as s\n"
    assert request_uses(source) == ["1: flask.request", "4: flask.session", "3: flask.g"]
    assert request_uses("from flask.globals import request_ctx\n") == ["1: flask.request_ctx"]
    assert request_uses("from flask import current_app\nfrom flask_babel import gettext\n") == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_but_the_webs_reads_the_request(path: Path):
    assert request_uses(path.read_text()) == []


def file_io(source: str) -> list[str]:
    """Return the file modules a module's source imports and the file calls it makes, as ``line: name``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in FILE_MODULES]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in FILE_MODULES:
            found.append((node.lineno, f"from {node.module} import"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in FILE_CALLS:
                found.append((node.lineno, f"{name}()"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_the_reader_finds_each_way_of_touching_a_file():
    source = (
        "import sqlite3\n"
        "from os import path\n"
        "import tempfile as scratch, math\n"
        "with open(name) as f:\n"
        "    Path(name).read_text()\n"
        "zipfile.ZipFile(path.join(a, b)).open('x')\n"
        "frame.to_file(name, driver='GPKG')\n"
        "import os.path\n"
    )
    assert file_io(source) == [
        "1: import sqlite3",
        "2: from os import",
        "3: import tempfile",
        "4: open()",
        "5: read_text()",
        "6: open()",
        "7: to_file()",
        "8: import os.path",
    ]
    pure = "import io\nfrom pathlib import PurePath\nbuffer = io.BytesIO()\nfigure.savefig(buffer)\nopen_ = None\n"
    assert file_io(pure) == []
    assert file_io("from . import os\nfrom .tempfile import x\n") == []  # the package's own modules


@pytest.mark.parametrize("path", _modules(("core",)), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_of_the_core_touches_a_file(path: Path):
    assert file_io(path.read_text()) == []
