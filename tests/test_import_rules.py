"""Dependencies point one way (README "Architecture"). Read from the source with `ast`, so a
rule broken anywhere in a module (a lazy import inside a function included) fails here.

- only `engine.recognition` (and the throughput benchmark's plain-funasr baseline) imports
  funasr or torch: the web process must stay light, and importing a page must not load a model;
- only `engine.store` speaks SQL (imports sqlite3 / sqlite_utils);
- pages and dashboard.py use `engine.dashboard` and the shared top-level modules only;
- `engine.web` never imports page helpers (`engine.dashboard`) nor the worker's packages;
- `engine.dashboard` never imports the HTTP layer or the worker's packages;
- the store and the shared top-level modules import no role package above them
  (`engine.cli`, the one entry point, may import everything, lazily).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
ROLE_PACKAGES = ("store", "recognition", "worker", "ops", "web", "dashboard", "tools")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it; `from engine import x` counts as
    `engine.x` (x may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def engine_files() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def role_of(module: str) -> str:
    """'engine.web.app' -> 'web'; 'engine.intake' -> 'shared'; 'engine.cli' -> 'cli'."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ROLE_PACKAGES:
        return parts[1]
    return "cli" if module in ("engine.cli", "engine.__main__") else "shared"


def imports_of_role(path: Path, role: str) -> list[str]:
    return sorted(
        m
        for m in imported_modules(path)
        if m.startswith("engine.") and role_of(m) == role and not _is_name_not_module(m)
    )


def _is_name_not_module(module: str) -> bool:
    # `from engine.store import Store` records "engine.store.Store": a name, not a module.
    return module.rsplit(".", 1)[-1][:1].isupper()


def violations(files: list[Path], forbidden_roles: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for role in forbidden_roles
        for module in imports_of_role(path, role)
    ]


def test_only_recognition_imports_funasr_or_torch():
    allowed = {"engine.tools.throughput_benchmark"}  # its baseline is a plain funasr loop
    bad = [
        f"{path.relative_to(ROOT)} imports {m}"
        for path in [*engine_files(), *page_files()]
        if role_of(module_name(path)) != "recognition" and module_name(path) not in allowed
        for m in imported_modules(path)
        if m.split(".")[0] in ("torch", "funasr", "torchaudio", "modelscope")
    ]
    assert bad == []


def test_only_the_store_speaks_sql():
    bad = [
        f"{path.relative_to(ROOT)} imports {m}"
        for path in [*engine_files(), *page_files()]
        if role_of(module_name(path)) != "store"
        for m in imported_modules(path)
        if m.split(".")[0] in ("sqlite3", "sqlite_utils")
    ]
    assert bad == []


def page_files() -> list[Path]:
    return [*sorted((ROOT / "pages").glob("*.py")), ROOT / "dashboard.py"]


def test_pages_use_the_dashboard_package_and_shared_modules_only():
    forbidden = tuple(r for r in ROLE_PACKAGES if r != "dashboard") + ("cli",)
    assert violations(page_files(), forbidden) == []


@pytest.mark.parametrize(
    ("role", "forbidden"),
    [
        ("web", ("dashboard", "worker", "recognition", "tools", "cli")),
        ("dashboard", ("web", "worker", "recognition", "tools", "cli")),
        ("ops", ("web", "dashboard", "worker", "recognition", "tools", "cli")),
        ("store", ("web", "dashboard", "worker", "recognition", "tools", "ops", "cli")),
        ("recognition", ("web", "dashboard", "worker", "tools", "ops", "store", "cli")),
        ("shared", ("web", "dashboard", "worker", "recognition", "tools", "ops", "cli")),
    ],
)
def test_dependencies_point_one_way(role, forbidden):
    files = [p for p in engine_files() if role_of(module_name(p)) == role]
    assert files, f"no modules found for {role}"
    assert violations(files, forbidden) == []


def test_the_rules_see_a_violation(tmp_path):
    """The checker itself can fail: a lazy import inside a function is found."""
    module = tmp_path / "sample.py"
    module.write_text("def f():\n    from engine.web import app\n    import torch\n")
    assert "engine.web.app" in imported_modules(module)
    assert "torch" in imported_modules(module)


def test_every_exception_class_lives_in_errors_py():
    """Flat, noun-named exceptions in one module (rq's habit): a class deriving from an
    exception anywhere else in the package fails here."""
    bases_that_are_exceptions = ("Exception", "Error", "Warning")
    stray = [
        f"{path.relative_to(ROOT)}: class {node.name}"
        for path in engine_files()
        if path != ENGINE / "errors.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        for base in node.bases
        if (ast.unparse(base).rsplit(".", 1)[-1]).endswith(bases_that_are_exceptions)
    ]
    assert stray == []
