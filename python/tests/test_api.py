"""The public API: every name documented and in the .pyi stub (with the runtime's
parameters and docstrings), the stub and py.typed shipped, and the README's example runs."""

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import icm
from helpers import REPO

STUB = Path(icm.__file__).with_name("__init__.pyi")


def stub_tree():
    assert STUB.is_file(), "the wheel ships icm/__init__.pyi"
    return ast.parse(STUB.read_text())


def stub_defs():
    """{name: node} of the stub's top-level functions, classes and annotated names."""
    out = {}
    for node in stub_tree().body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def params(node: ast.FunctionDef):
    a = node.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg != "self"]


def test_the_package_ships_its_stub_and_py_typed():
    assert Path(icm.__file__).with_name("py.typed").is_file()
    stub_tree()


def test_every_public_name_is_documented_and_in_the_stub():
    defs = stub_defs()
    assert sorted(icm.__all__) == sorted(set(icm.__all__))
    for name in icm.__all__:
        obj = getattr(icm, name)
        assert name in defs, f"{name} is not in {STUB.name}"
        node = defs[name]
        if callable(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"
            assert ast.get_docstring(node), f"{name} has no docstring in the stub"
        if inspect.isroutine(obj):
            # the stub's text is the runtime's (both come from the Rust doc comments)
            assert ast.get_docstring(node) == inspect.getdoc(obj), name
            assert params(node) == list(inspect.signature(obj).parameters), name
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert ast.get_docstring(node) == inspect.getdoc(obj), name
            assert [b.id for b in node.bases] == [b.__name__ for b in obj.__bases__], name


def test_model_members_are_in_the_stub():
    cls = stub_defs()["Model"]
    members = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    for name in ("load", "name", "sha256", "quality", "N", "M", "encoder", "metadata"):
        assert name in members, name
        assert ast.get_docstring(members[name]) == inspect.getdoc(getattr(icm.Model, name)), name
    assert params(members["load"]) == list(inspect.signature(icm.Model.load).parameters)
    assert ast.get_docstring(cls) == inspect.getdoc(icm.Model)


def test_the_readme_example_runs(tmp_path):
    """README.md's Python example, run as a script in an empty folder (no repository)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "README.md: no ```python block under ## Python"
    lines = [l for l in code.group(1).splitlines() if l.strip()]
    assert len(lines) <= 12, f"the example has {len(lines)} lines"
    script = tmp_path / "example.py"
    script.write_text(code.group(1))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "the example prints what it did"


def test_spec_version_is_the_specifications():
    first = (REPO / "spec" / "icm-v1.md").read_text(encoding="utf-8").splitlines()[0]
    assert first.endswith(f"version {icm.SPEC_VERSION}"), first
