"""Imports point one way: accounts <- events <- subscriptions <- deliveries <- webhookhub.web
(the entry points: admin, API, dashboard, trigger view, /metrics)."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTTP_LIBRARIES = ("requests", "urllib3", "httpx", "aiohttp")
HTTP_MODULE = "deliveries/http.py"


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(path: Path, *, module_level_only: bool = False) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import; with module_level_only, none inside a def or class."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes: list[ast.AST] = list(tree.body)
    while nodes:
        node = nodes.pop()
        if module_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path)
            yield node.lineno, module
            yield from ((node.lineno, f"{module}.{alias.name}") for alias in node.names)  # from x import y
        nodes.extend(ast.iter_child_nodes(node))


def _violations(paths: list[Path], forbidden: tuple[str, ...], *, module_level_only: bool = False) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in paths
        for line, module in _imports(path, module_level_only=module_level_only)
        if any(module == name or module.startswith(f"{name}.") for name in forbidden)
    )


# URL configuration wires every app's views together, so it may import any of them.
URL_MODULES = {"urls.py", "api_urls.py"}


def _wiring_modules() -> list[Path]:
    """The project's own modules in webhookhub/ other than URL configuration, not the accounts app."""
    return sorted(path for path in (ROOT / "webhookhub").glob("*.py") if path.name not in URL_MODULES)


def test_the_scanned_packages_exist():
    assert len(_python_files("events")) >= 5
    assert len(_python_files("subscriptions")) >= 5
    assert len(_python_files("webhookhub/accounts")) >= 4
    assert ROOT / "webhookhub" / "__init__.py" in _wiring_modules()


def test_the_scanner_sees_imports_inside_functions():
    # webhookhub/__init__.py imports deliveries lazily, inside __getattr__.
    init = ROOT / "webhookhub" / "__init__.py"
    assert _violations([init], ("deliveries",))
    assert not _violations([init], ("deliveries",), module_level_only=True)


def test_events_imports_nothing_from_subscriptions_or_deliveries():
    assert _violations(_python_files("events"), ("subscriptions", "deliveries")) == []


def test_subscriptions_imports_nothing_from_deliveries():
    assert _violations(_python_files("subscriptions"), ("deliveries",)) == []


def test_accounts_imports_nothing_from_the_delivery_apps():
    assert _violations(_python_files("webhookhub/accounts"), ("events", "subscriptions", "deliveries")) == []


def test_project_wiring_imports_deliveries_only_inside_functions():
    assert _violations(_wiring_modules(), ("deliveries",), module_level_only=True) == []


ENTRY_POINTS = "webhookhub.web"
DOMAIN_APPS = ("events", "subscriptions", "deliveries", "webhookhub/accounts")


@pytest.mark.parametrize("app", DOMAIN_APPS)
def test_no_domain_app_imports_the_entry_point_layer(app):
    assert _violations(_python_files(app), (ENTRY_POINTS,)) == []


def test_the_scanner_would_see_a_domain_app_importing_the_entry_point_layer(tmp_path):
    offender = tmp_path / "offender.py"
    offender.write_text("from webhookhub.web.api import views\n\ndef f():\n    import webhookhub.web.metrics\n")

    found = [module for _, module in _imports(offender) if module.startswith(ENTRY_POINTS)]
    assert sorted(found) == ["webhookhub.web.api", "webhookhub.web.api.views", "webhookhub.web.metrics"]


def test_the_entry_point_layer_holds_the_admin_api_dashboard_and_trigger_view():
    web = ROOT / "webhookhub" / "web"
    assert {"admin", "api", "dashboard"} <= {path.name for path in web.iterdir() if path.is_dir()}
    assert (web / "triggers.py").exists() and (web / "metrics.py").exists()
    assert not (ROOT / "deliveries" / "admin.py").exists() and not (ROOT / "deliveries" / "inbound.py").exists()


def _project_files() -> list[Path]:
    """Every .py file of the project (not the virtualenv, runtime data or the tests)."""
    skipped = {".venv", "venv", "tests", "var", "node_modules", ".git"}
    files = []
    for top in ROOT.iterdir():
        if top.name in skipped:
            continue
        if top.is_dir():
            files.extend(top.rglob("*.py"))
        elif top.suffix == ".py":
            files.append(top)
    return sorted(files)


@pytest.mark.parametrize("library", HTTP_LIBRARIES)
def test_only_the_http_module_imports_an_http_library(library):
    files = [path for path in _project_files() if path.relative_to(ROOT).as_posix() != HTTP_MODULE]

    assert _violations(files, (library,)) == []


def test_the_http_module_is_where_urllib3_is_imported():
    assert _violations([ROOT / HTTP_MODULE], ("urllib3",))
