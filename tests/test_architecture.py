"""The floors and what lives on them.

Imports point one way: webhookhub.web (the entry points: admin, API, dashboard, trigger URL, /metrics,
probes, management commands) -> deliveries -> subscriptions -> events -> accounts -> ground. The
domain apps keep models, services, selectors, rules, tasks and migrations: no view, viewset,
serializer, admin, form, management command or template, and nothing of HTTP, DRF, the admin or forms.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTTP_LIBRARIES = ("requests", "urllib3", "httpx", "aiohttp")
HTTP_MODULE = "deliveries/http.py"

# Lowest first: each floor may import the floors below it, never one above.
FLOORS = ("ground", "accounts", "events", "subscriptions", "deliveries")
DOMAIN_APPS = ("accounts", "events", "subscriptions", "deliveries")
PROJECT = "webhookhub"  # settings, urls, Celery app, and the entry-point layer webhookhub.web
ENTRY_POINTS = "webhookhub.web"

# What only the entry-point layer may import ...
ENTRY_POINT_LIBRARIES = (
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django.contrib.admin",
    "django.forms",
    "django.http",
    "django.core.management.base",
)
# ... and the files and folders only it may hold.
ENTRY_POINT_FOLDERS = {"management", "templates", "static", "templatetags", "api", "admin"}
ENTRY_POINT_FILES = {"admin.py", "forms.py", "views.py", "serializers.py", "urls.py"}

# What the project package itself keeps; everything else of it is in web/.
PROJECT_MODULES = {"__init__.py", "settings.py", "urls.py", "celery.py", "wsgi.py", "asgi.py", "checks.py", "web"}


def _python_files(*folders: str, root: Path = ROOT) -> list[Path]:
    return sorted(path for folder in folders for path in (root / folder).rglob("*.py"))


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, path: Path, root: Path) -> str:
    if not node.level:
        return node.module or ""
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(path: Path, *, root: Path = ROOT, module_level_only: bool = False) -> Iterator[tuple[int, str]]:
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
            module = _absolute(node, path, root)
            yield node.lineno, module
            yield from ((node.lineno, f"{module}.{alias.name}") for alias in node.names)  # from x import y
        nodes.extend(ast.iter_child_nodes(node))


def _violations(
    paths: list[Path], forbidden: tuple[str, ...], *, root: Path = ROOT, module_level_only: bool = False
) -> list[str]:
    return sorted(
        f"{path.relative_to(root)}:{line} imports {module}"
        for path in paths
        for line, module in _imports(path, root=root, module_level_only=module_level_only)
        if any(module == name or module.startswith(f"{name}.") for name in forbidden)
    )


def _entry_point_paths(app: Path) -> list[str]:
    """Files and folders of an app that only the entry-point layer may have (caches aside)."""
    found = []
    for path in app.rglob("*"):
        if "__pycache__" in path.parts:
            continue
        if (path.is_dir() and path.name in ENTRY_POINT_FOLDERS) or (path.is_file() and path.name in ENTRY_POINT_FILES):
            found.append(path.relative_to(app.parent).as_posix())
    return sorted(found)


def test_the_scanned_packages_exist():
    for floor in FLOORS:
        assert len(_python_files(floor)) >= 4, floor
    assert len(_python_files("webhookhub/web")) >= 20
    assert (ROOT / "webhookhub" / "__init__.py").exists()


def test_the_scanner_sees_imports_inside_functions():
    # webhookhub/__init__.py imports deliveries lazily, inside __getattr__.
    init = ROOT / "webhookhub" / "__init__.py"
    assert _violations([init], ("deliveries",))
    assert not _violations([init], ("deliveries",), module_level_only=True)


# --- the floors -----------------------------------------------------------------------------


@pytest.mark.parametrize("floor", FLOORS)
def test_a_floor_imports_nothing_above_it(floor):
    above = (*FLOORS[FLOORS.index(floor) + 1 :], PROJECT)
    assert _violations(_python_files(floor), above) == []


def test_ground_imports_no_app_and_not_the_project():
    assert _violations(_python_files("ground"), (*DOMAIN_APPS, PROJECT)) == []


@pytest.mark.parametrize("app", DOMAIN_APPS)
def test_no_domain_app_imports_the_project_not_even_its_publish(app):
    # ``from webhookhub import publish`` is for code outside the apps; inside, publishing is
    # deliveries.services.publishing, and tasks are sent by name (ground.task_names).
    assert _violations(_python_files(app), (PROJECT,)) == []


def _project_modules() -> list[Path]:
    """The project's own modules in webhookhub/ (not the entry-point layer) other than URL configuration,
    which wires the entry points together."""
    return sorted(path for path in (ROOT / "webhookhub").glob("*.py") if path.name != "urls.py")


def test_importing_the_project_package_loads_no_app():
    # Settings and the Celery app are imported by every process before Django is set up.
    apps = (*DOMAIN_APPS, ENTRY_POINTS)
    assert _violations(_project_modules(), apps, module_level_only=True) == []


def test_the_scanner_would_see_a_floor_importing_one_above(tmp_path):
    app = tmp_path / "events"
    app.mkdir()
    (app / "services.py").write_text(
        "from deliveries.models import Delivery\n\ndef f():\n    from webhookhub import publish\n"
    )

    found = _violations(_python_files("events", root=tmp_path), ("deliveries", PROJECT), root=tmp_path)
    assert found == [
        "events/services.py:1 imports deliveries.models",
        "events/services.py:1 imports deliveries.models.Delivery",
        "events/services.py:4 imports webhookhub",
        "events/services.py:4 imports webhookhub.publish",
    ]


# --- entry points live in webhookhub.web ---------------------------------------------------------


@pytest.mark.parametrize("app", DOMAIN_APPS)
def test_no_domain_app_imports_http_drf_admin_forms_or_commands(app):
    assert _violations(_python_files(app), (*ENTRY_POINT_LIBRARIES, ENTRY_POINTS)) == []


@pytest.mark.parametrize("app", DOMAIN_APPS)
def test_no_domain_app_holds_views_admin_forms_commands_or_templates(app):
    assert _entry_point_paths(ROOT / app) == []


def test_the_scanners_would_see_an_entry_point_in_a_domain_app(tmp_path):
    app = tmp_path / "subscriptions"
    for folder in ("api", "management/commands", "templates/subscriptions"):
        (app / folder).mkdir(parents=True)
    (app / "api" / "views.py").write_text("from rest_framework import viewsets\n")
    (app / "management" / "commands" / "add.py").write_text("from django.core.management.base import BaseCommand\n")
    (app / "templates" / "subscriptions" / "page.html").write_text("<p></p>\n")
    (app / "admin.py").write_text("from django.contrib import admin\n")
    (app / "forms.py").write_text("from django import forms\n")
    (app / "services.py").write_text(
        "def f():\n    import django.http\n    import django_filters\n    from drf_spectacular.utils import x\n"
    )

    assert _entry_point_paths(app) == [
        "subscriptions/admin.py",
        "subscriptions/api",
        "subscriptions/api/views.py",
        "subscriptions/forms.py",
        "subscriptions/management",
        "subscriptions/templates",
    ]
    found = _violations(_python_files("subscriptions", root=tmp_path), ENTRY_POINT_LIBRARIES, root=tmp_path)
    assert {violation.split(" imports ")[1] for violation in found} == {
        "django.contrib.admin",
        "django.forms",
        "django.core.management.base",
        "django.core.management.base.BaseCommand",
        "rest_framework",
        "rest_framework.viewsets",
        "django.http",
        "django_filters",
        "drf_spectacular.utils",
        "drf_spectacular.utils.x",
    }


def test_the_project_package_keeps_only_settings_and_wiring():
    held = {path.name for path in (ROOT / "webhookhub").iterdir() if path.name != "__pycache__"}
    assert held == PROJECT_MODULES


def test_the_entry_point_layer_holds_admin_api_dashboard_triggers_commands_and_probes():
    web = ROOT / "webhookhub" / "web"
    assert {"admin", "api", "dashboard", "management", "templates", "triggers"} <= {
        path.name for path in web.iterdir() if path.is_dir()
    }
    for module in ("metrics.py", "health.py", "favicon.py", "json_errors.py", "management/base.py"):
        assert (web / module).exists(), module
    assert {path.name for path in (web / "triggers").glob("*.py")} == {"__init__.py", "view.py", "api.py", "admin.py"}


def test_every_api_viewset_is_one_class_of_the_entry_point_layer():
    """A route's viewset is written in one place: no viewset of another module under it."""
    from rest_framework.viewsets import ViewSetMixin

    from webhookhub.web.api.urls import router

    project = (*DOMAIN_APPS, PROJECT, "ground")
    for _prefix, viewset, _basename in router.registry:
        assert viewset.__module__.startswith(f"{ENTRY_POINTS}."), viewset
        own = [cls for cls in viewset.__mro__[1:] if cls.__module__.split(".")[0] in project]
        assert all(cls.__module__.startswith(f"{ENTRY_POINTS}.") for cls in own), (viewset, own)
        assert not [cls for cls in own if issubclass(cls, ViewSetMixin)], (viewset, own)


# --- only deliveries/http.py talks to the network -----------------------------------------------


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
