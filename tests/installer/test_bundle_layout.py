"""The frozen app's layout (installer/bundle_layout.py, read by installer/ganad.spec) holds what the
package reads at run time, where the package looks for it once frozen.

PyInstaller gives every bundled module a `__file__` below the bundle folder (`sys._MEIPASS`) at its
source-relative path, e.g. `<bundle>/ganad_clinic/store/migrate.pyc`. These tests run the package's
own path code with such a `__file__` over a folder laid out as `data_files` says, so a moved
resource or migration that the frozen app would miss fails here, without a PyInstaller build
(`installer/smoke_check.sh` checks the real build).
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "installer"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


layout = _load("ganad_bundle_layout", INSTALLER / "bundle_layout.py")
entry = _load("ganad_frozen_entry", INSTALLER / "ganad_entry.py")


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bundle folder holding the data files, as PyInstaller lays them out; the process looks frozen."""
    meipass = tmp_path / "dist" / "ganad" / "_internal"
    for source, destination in layout.data_files(ROOT):
        target = meipass / destination
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(meipass), raising=False)
    return meipass


def frozen_module(relative: str, meipass: Path) -> SimpleNamespace:
    """Run a package module's code as the frozen app would: its `__file__` inside the bundle."""
    source = ROOT / relative
    namespace = {
        "__name__": "frozen_" + relative.replace("/", "_").removesuffix(".py"),
        "__file__": str(meipass / relative).removesuffix(".py") + ".pyc",
    }
    exec(compile(source.read_text(encoding="utf-8"), str(source), "exec"), namespace)
    return SimpleNamespace(**namespace)


def test_data_files_hold_every_migration_and_the_icon_only() -> None:
    datas = layout.data_files(ROOT)
    bundled = {(Path(source).name, destination) for source, destination in datas}
    migrations = ROOT / layout.MIGRATIONS
    expected = {
        (path.name, path.parent.relative_to(ROOT).as_posix())
        for path in migrations.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert {("env.py", layout.MIGRATIONS), ("script.py.mako", layout.MIGRATIONS),
            ("0001_initial.py", f"{layout.MIGRATIONS}/versions")} <= expected
    assert expected | {("icon.png", "resources")} == bundled
    assert all(Path(source).is_file() for source, _ in datas)


def test_frozen_migrations_are_found_and_upgrade_a_database(bundle: Path, tmp_path: Path) -> None:
    from ganad_clinic.store.engine import create_store_engine, resolve_url
    from ganad_clinic.store.migrate import head_revision

    migrate = frozen_module("ganad_clinic/store/migrate.py", bundle)
    assert migrate.MIGRATIONS_DIR == bundle / "ganad_clinic" / "store" / "migrations"
    assert migrate.head_revision() == head_revision() == "0008"

    url = resolve_url(home=tmp_path / "home")
    (tmp_path / "home").mkdir()
    engine = create_store_engine(url)
    try:
        migrate.upgrade_to_head(engine, url)
        assert migrate.database_revisions(url) == ("0008",)
    finally:
        engine.dispose()


def test_frozen_app_finds_its_icon(bundle: Path) -> None:
    pytest.importorskip("PySide6.QtWidgets")
    main_window = frozen_module("ganad_clinic/app/main_window.py", bundle)
    assert main_window.RESOURCES == bundle / "resources"
    assert (main_window.RESOURCES / "icon.png").is_file()


def test_frozen_data_folder_is_the_installed_one(bundle: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The database, models and heat maps live in the user's data folder, never in the bundle."""
    import platformdirs

    from ganad_clinic.store.engine import APP_NAME, resolve_home

    assert resolve_home() == Path(platformdirs.user_data_dir(APP_NAME)).absolute()
    assert bundle not in resolve_home().parents
    monkeypatch.setenv("GANAD_HOME", str(tmp_path / "lab"))
    assert resolve_home() == tmp_path / "lab"
    assert resolve_home(tmp_path / "given") == tmp_path / "given"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_nothing_the_package_imports_is_excluded() -> None:
    sources = [*(ROOT / "ganad_clinic").rglob("*.py"), INSTALLER / "ganad_entry.py"]
    offending = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in sources for name in _imported_modules(path) if layout.excluded(name)
    )
    assert not offending, "excluded from the frozen app but imported: " + "; ".join(offending)


def test_excluded_covers_subpackages_only() -> None:
    assert layout.excluded("matplotlib")
    assert layout.excluded("matplotlib.pyplot")
    assert layout.excluded("PySide6.QtNetwork")
    assert not layout.excluded("PySide6.QtWidgets")
    assert not layout.excluded("PySide6")
    assert not layout.excluded("torch")
    assert not layout.excluded("monai.transforms")


@pytest.mark.parametrize(("destination", "kept"), [
    ("torch/lib/libtorch_cpu.so", True),
    ("torch/lib/libc10.so", True),
    ("torch/bin/torch_shm_manager", True),
    ("torch/bin/protoc", False),
    ("torch/bin/protoc-3.13.0.0", False),
    ("torch/bin/test_api", False),
    ("torch/bin/TCPStoreTest", False),
    ("torch/test/Dict_test", False),
    ("torch/include/ATen/ATen.h", False),
    ("torch/lib/libtorchbind_test.so", False),
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", True),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", True),
    ("PySide6/Qt/plugins/platforms/libqvnc.so", False),
    ("PySide6\\Qt\\plugins\\imageformats\\libqpdf.so", False),
    ("PySide6/Qt/plugins/imageformats/libqjpeg.so", True),
    ("ganad_clinic/store/migrations/env.py", True),
    ("resources/icon.png", True),
    ("reportlab/fonts/Vera.ttf", True),
])
def test_prune_drops_test_and_unused_files_only(destination: str, kept: bool) -> None:
    assert layout.keep(destination) is kept


@pytest.mark.parametrize(("executable", "arguments", "expected"), [
    ("/opt/ganad-clinic/ganad", ["--version"], ["--version"]),
    ("/opt/ganad-clinic/ganad", ["app", "--home", "x"], ["app", "--home", "x"]),
    ("/opt/ganad-clinic/ganad-app", [], ["app"]),
    ("/opt/ganad-clinic/ganad-app", ["--home", "x"], ["app", "--home", "x"]),
    ("ganad-app.exe", ["--help"], ["app", "--help"]),
    ("GANAD-APP.EXE", [], ["app"]),
    ("ganad.exe", ["demo", "--quick"], ["demo", "--quick"]),
])
def test_gui_executable_opens_the_app(executable: str, arguments: list[str], expected: list[str]) -> None:
    assert entry.command_line(executable, arguments) == expected
