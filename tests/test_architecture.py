"""Nothing but the web reads a request: what a service or a command does depends only on its arguments.

The import contracts in pyproject.toml (checked by ``lint-imports`` in scripts/test.sh) keep each
layer from importing the ones above it; they cannot see which names of Flask a module takes, so
this test reads every module of the core, the store, the services and the CLI for the request's own
objects, however they are imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mapsvc"
WITHOUT_A_REQUEST = ("core", "store", "services", "cli")
REQUEST_NAMES = {"request", "g", "session", "request_ctx", "has_request_context"}


def _modules() -> list[Path]:
    return sorted(p for layer in WITHOUT_A_REQUEST for p in (PACKAGE / layer).rglob("*.py"))


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
