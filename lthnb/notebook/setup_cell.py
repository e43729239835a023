"""What a notebook's Setup cell calls: brief errors, quiet TensorFlow, checked parameters.

Every notebook starts with a tiny cell that records the names that exist before its
`parameters` cell, then the `parameters` cell (papermill injects its values in a cell right
after it), then the Setup cell:

    from lthnb import notebook

    params = notebook.setup(globals(), _before_parameters)

`setup` shows lthnb's own errors as their one-line message, filters TensorFlow's start-up lines,
moves to the repository root, and refuses any parameter the notebook does not know, before
anything is written.

Notebooks are committed without outputs through a git filter: see `lthnb.notebook.git_filter`.
This module imports neither TensorFlow nor IPython at import time.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.abc
import importlib.util
import inspect
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, MutableMapping
from typing import Any

from lthnb.params import PARAMETER_NAMES, Params, load_params
from lthnb.params.schema import network_defaults

# papermill's injected cell starts so; the notebooks' own `parameters` cell with "# Parameters ("
PAPERMILL_HEADER = "# Parameters\n"

# --- parameters given to a notebook ---


def params_from_notebook(namespace: MutableMapping[str, Any], before: set[str]) -> Params:
    """Validate the parameters a notebook was given, refusing names it does not know.

    `namespace` is the notebook's globals; `before` the names that existed before its
    `parameters` cell. Every public name defined since then (by the parameters cell, papermill's
    injected cell from -p, -y or -f, or a line added in JupyterLab) counts as a given parameter,
    except modules, classes and functions, which no parameter can be.
    """
    given = {
        name: value
        for name, value in namespace.items()
        if name in PARAMETER_NAMES or (name not in before and _may_be_parameter(name, value))
    }
    injected = injected_names(namespace.get("In", []))
    if "arch" in injected:  # papermill named the network: its recipe for the keys left out
        recipe = network_defaults(given["arch"])
        given.update({key: value for key, value in recipe.items() if key not in injected})
    return load_params(given)


def injected_names(history: list[str]) -> set[str]:
    """The names papermill's injected cell (`# Parameters`, right after the `parameters` cell)
    assigned, from IPython's input history; none outside papermill. The `parameters` cell holds
    the demo's values: a run that names another `arch` and leaves out a key of its recipe gets
    the recipe's value, as a params file read by lthnb would."""
    cells = [cell for cell in history if cell.startswith(PAPERMILL_HEADER)]
    if not cells:
        return set()
    with contextlib.suppress(SyntaxError):
        tree = ast.parse(cells[-1])
        return {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
    return set()


def _may_be_parameter(name: str, value: Any) -> bool:
    return not (
        name.startswith("_")
        or inspect.ismodule(value)
        or inspect.isclass(value)
        or inspect.isroutine(value)
    )


def setup(namespace: MutableMapping[str, Any], before: set[str]) -> Params:
    """The Setup cell: brief errors, quiet TensorFlow, repository root, validated parameters."""
    from lthnb.notebook.project import enter_project_root

    shell = _shell()
    if shell is not None:
        show_errors_briefly(shell)
    quiet_tensorflow_startup()
    show_notices_briefly()
    enter_project_root()  # relative paths (data_dir, output_dir) start at the repository root
    params = params_from_notebook(namespace, before)
    if shell is not None:
        _NameTracker.follow(shell, before)
    return params


def show_notices_briefly() -> None:
    """Warnings whose category is `brief` (lthnb's notices of what it rebuilt) print as their
    one-line message, without the file, line and source line Python adds to warnings."""
    shown = warnings.showwarning
    if getattr(shown, "lthnb_brief", False):
        return

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if getattr(category, "brief", False):
            print(f"note: {message}", file=file or sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    show.lthnb_brief = True
    warnings.showwarning = show


def _shell() -> Any:
    """The running IPython shell, or None outside IPython."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


class _NameTracker:
    """Counts the names that later cells define as known, so a rerun of Setup ignores them.

    In JupyterLab one reruns the parameters cell and Setup without the cell that took the
    snapshot; names defined meanwhile by other cells (`figure`, `run`) are not parameters.
    Cells that only assign values (the parameters cell, papermill's, a user's override cell)
    never count: a misspelled name there must still be refused.
    """

    def __init__(self, shell: Any, known: set[str]) -> None:
        self.shell, self.known = shell, known
        self.names = set(shell.user_ns)

    @classmethod
    def follow(cls, shell: Any, known: set[str]) -> None:
        tracker = getattr(shell, "_lthnb_name_tracker", None)
        if tracker is None:
            tracker = cls(shell, known)
            shell.events.register("pre_run_cell", tracker.pre_run_cell)
            shell.events.register("post_run_cell", tracker.post_run_cell)
            shell._lthnb_name_tracker = tracker
        tracker.known, tracker.names = known, set(shell.user_ns)

    def pre_run_cell(self, info: Any) -> None:
        self.names = set(self.shell.user_ns)

    def post_run_cell(self, result: Any) -> None:
        if not assigns_only(result.info.raw_cell or ""):
            self.known.update(set(self.shell.user_ns) - self.names)


def assigns_only(source: str) -> bool:
    """True for a cell of `name = value` lines that call nothing, like a parameters cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # magics, shell escapes
        return False
    return all(
        isinstance(node, ast.Assign | ast.AnnAssign)
        and all(isinstance(target, ast.Name) for target in _targets(node))
        and not any(isinstance(inner, ast.Call) for inner in ast.walk(node))
        for node in tree.body
    )


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


# --- lthnb's errors as one line ---

# Every error class lthnb defines derives from one of these (a test checks it). IPython hands
# these to `_show_briefly`, which passes any exception that is not lthnb's own on unchanged.
HANDLED_BASES = (ValueError, RuntimeError)
TRACEBACK_HINT = "(%tb in a new cell shows the traceback)"


def is_lthnb_error(error: BaseException) -> bool:
    """An exception of a class defined in lthnb: its message says what is wrong and what to do."""
    return any(
        cls.__module__ == "lthnb" or cls.__module__.startswith("lthnb.")
        for cls in type(error).__mro__
    )


def brief_traceback(error: BaseException) -> list[str]:
    """What the notebook shows for an lthnb error: its one-line message and how to see more."""
    return [f"\x1b[0;31m{type(error).__name__}\x1b[0m: {error}", f"\x1b[2m{TRACEBACK_HINT}\x1b[0m"]


def show_errors_briefly(shell: Any) -> None:
    """Show lthnb's errors as their message in `shell`; %tb still shows the traceback.

    The cell still fails: the error is recorded as usual, so papermill stops the run and
    raises PapermillExecutionError with the error's name and message.
    """
    shell.set_custom_exc(HANDLED_BASES, _show_briefly)


def _show_briefly(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset=None):
    if not is_lthnb_error(value):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return None
    # IPython's own hook for exceptions that render themselves; removed again so that %tb,
    # which reads the same exception from sys.last_value, shows the whole traceback.
    value._render_traceback_ = lambda: brief_traceback(value)
    try:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    finally:
        del value._render_traceback_
    return None


# --- TensorFlow's start-up lines ---

# What TensorFlow 2.21 writes to the process's stderr on import and on its first look for a GPU,
# before its log level applies. Other lines, warnings and errors included, are kept.
STARTUP_LINES = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:. ]+\d+ (port|cpu_feature_guard)\.cc:\d+\] "
    r"(oneDNN custom operations are on|This TensorFlow binary is optimized)"
    r"|[IW]\d{4} [\d:. ]+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine)"
)
NO_DRIVER = "Could not find cuda drivers on your machine"
# On a machine without NVIDIA's driver TensorFlow still calls cuInit and logs the failure as an
# error. Dropped only together with the line above, so a GPU machine's real failure shows.
CUINIT_FAILED = re.compile(r"^E\d{4} [\d:. ]+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit")


def filter_startup_lines(text: str) -> str:
    """`text` without TensorFlow's start-up lines (a CPU machine's cuInit error included)."""
    no_driver = NO_DRIVER in text
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if not STARTUP_LINES.match(line) and not (no_driver and CUINIT_FAILED.match(line))
    ]
    return "".join(kept)


@contextlib.contextmanager
def startup_lines_filtered() -> Iterator[None]:
    """Collect what is written to file descriptor 2 meanwhile; pass it on filtered."""
    with contextlib.suppress(AttributeError, ValueError):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                capture.seek(0)
                kept = filter_startup_lines(capture.read().decode("utf-8", "replace"))
                if kept:
                    sys.stderr.write(kept)
                    sys.stderr.flush()
    finally:
        os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first `import tensorflow`, and TensorFlow's first look for a GPU, filtered."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import only; the usual finders locate the package
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            with startup_lines_filtered():
                execute(module)
                # The cuInit line comes with the first device query; listing devices still
                # lets lthnb.training.device choose visible devices and memory growth afterwards.
                with contextlib.suppress(Exception):
                    module.config.list_physical_devices()

        spec.loader.exec_module = exec_module
        return spec


def quiet_tensorflow_startup() -> None:
    """Filter TensorFlow's start-up lines when it is first imported (nothing if it already is).

    TF_CPP_MIN_LOG_LEVEL=0 (all of TensorFlow's log) keeps every line.
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
