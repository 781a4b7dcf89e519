"""What goes into the frozen GANAD Clinic and what stays out: read by `ganad.spec`, checked by
tests/installer. Plain Python, no PyInstaller import, so the tests run without it.

PyInstaller gives each module of the frozen app a `__file__` at the same place below the bundle
folder (`sys._MEIPASS`, `dist/ganad/_internal/`) as below the source root. The package finds its
files relative to `__file__` (`store/migrate.py`: `migrations/` beside it; `app/main_window.py`:
`resources/` two levels up), so bundling each data file at its source-relative path is all the
frozen app needs: no code path of its own. The data folder (database, models, heat maps) is not
bundled: it comes from `--home`, `$GANAD_HOME` or platformdirs, as for the installed package.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

APP_NAME = "ganad"  # the folder dist/ganad and its command-line executable
GUI_NAME = "ganad-app"  # Windows and macOS only: the same program as `ganad app`, without a console
PACKAGE = "ganad_clinic"
MIGRATIONS = "ganad_clinic/store/migrations"  # read from disk by Alembic: the files must be there as files
RESOURCES = "resources"
RESOURCE_FILES = ("icon.png",)  # resources/readme/ is for the README only

# Never imported by the package at run time. Some are optional imports of MONAI or torch (which
# fall back when missing); the rest are test or notebook tools present in the build's venv.
EXCLUDES = (
    # tests and development tools
    "tests", "pytest", "_pytest", "pytestqt", "hypothesis", "mlxtend", "pypdf", "pip", "setuptools",
    "_distutils_hack", "IPython", "jupyter", "notebook", "pygments", "tkinter", "_tkinter",
    # scientific stack MONAI imports when present but GANAD Clinic does not use (scipy it does:
    # imaging.cells finds white cells with scipy.ndimage, which imports numpy.f2py)
    "matplotlib", "mpl_toolkits", "pandas", "sklearn", "joblib", "threadpoolctl", "narwhals",
    "contourpy", "kiwisolver", "fontTools", "cycler", "dateutil",
    # torch's vision, audio and board stacks and its GPU compiler; torch._dynamo and sympy stay: the
    # optimizers import them on their first step
    "torchvision", "torchaudio", "torchtext", "tensorboard", "torch.utils.tensorboard", "triton",
    "onnx", "onnxruntime", "onnxscript", "cloudpickle",
    # MONAI's optional readers and integrations
    "ignite", "nibabel", "itk", "cupy", "cucim", "skimage", "cv2", "tifffile", "imagecodecs", "lmdb",
    "mlflow", "wandb", "clearml", "nvidia", "h5py", "zarr", "pydicom", "openslide", "einops", "transformers",
    # Qt modules the GUI does not use (only QtCore, QtGui, QtWidgets)
    "PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets", "PySide6.QtPdf", "PySide6.QtPdfWidgets", "PySide6.QtSvg", "PySide6.QtSvgWidgets",
    "PySide6.QtPrintSupport", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtXml", "PySide6.QtDBus",
    "PySide6.QtConcurrent", "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools",
)

# Collected files dropped after the analysis, as POSIX patterns on their destination in the bundle.
PRUNE = (
    # torch: C++ test programs and test libraries, protoc, headers and CMake files (torch/bin keeps
    # torch_shm_manager: `import torch` checks that it is there)
    "torch/bin/*Test", "torch/bin/test_*", "torch/bin/protoc*", "torch/test/*", "torch/include/*",
    "torch/share/*", "torch/lib/libtorchbind_test.so", "torch/lib/libjitbackend_test.so",
    "torch/lib/libbackend_with_compiler.so", "torch/lib/libaoti_custom_ops.so",
    # Qt plugins for embedded devices, remote screens and image formats the app never reads
    "PySide6/Qt/plugins/platforms/libqvnc.so", "PySide6/Qt/plugins/platforms/libqlinuxfb.so",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so", "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/platforms/libqminimalegl.so", "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/plugins/imageformats/libqpdf.so", "PySide6/Qt/plugins/imageformats/libqsvg.so",
    "PySide6/Qt/plugins/iconengines/libqsvgicon.so", "PySide6/Qt/plugins/generic/*",
    "PySide6/Qt/plugins/networkinformation/*", "PySide6/Qt/plugins/tls/*",
    # Qt's GTK 3 theme would load the user's GTK beside the GLib, Pango and Cairo of the build machine;
    # without it Qt uses the XDG desktop portal theme or its own
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    # MONAI's C++/CUDA extension sources, build helpers and tests
    "monai/csrc/*", "monai/_extensions/*",
)


def data_files(root: Path) -> list[tuple[str, str]]:
    """(source file, destination folder in the bundle) for the files the package reads at run time."""
    root = Path(root)
    datas = []
    migrations = root / MIGRATIONS
    for source in sorted(migrations.rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts and source.suffix != ".pyc":
            datas.append((str(source), source.parent.relative_to(root).as_posix()))
    for name in RESOURCE_FILES:
        datas.append((str(root / RESOURCES / name), RESOURCES))
    return datas


def keep(destination: str) -> bool:
    """False for a collected file matched by PRUNE (`destination` relative to the bundle folder)."""
    path = destination.replace("\\", "/")
    return not any(fnmatch.fnmatchcase(path, pattern) for pattern in PRUNE)


def excluded(module: str) -> bool:
    """True when `module` (dotted) or a package above it is excluded from the bundle."""
    parts = module.split(".")
    return any(".".join(parts[:depth]) in EXCLUDES for depth in range(1, len(parts) + 1))
