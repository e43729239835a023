"""05_plot in a real browser: JupyterLab on localhost, driven by headless Chromium.

Runs every cell of a copy of 05_plot (its parameters cell pointing at a tiny run folder) as a
user would, then checks that the explorer's controls are widgets, that moving the round slider
redraws the view, and that no cell showed an error or a stderr block. Skipped where Chromium,
chromedriver or selenium is missing; `.ci/run` installs Debian's `chromium` and
`chromium-driver`. LTHNB_SCREENSHOTS=<folder> keeps the screenshots.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SELENIUM = importlib.util.find_spec("selenium") is not None
# Chromium as root in a container, with nothing fetched from outside.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]

MISSING = "Chromium and chromedriver (apt-get install chromium chromium-driver, as .ci/run does)"
MISSING += " and selenium (the dev extra)"


@pytest.fixture(autouse=True)
def browser_available() -> None:
    """Skipped where the browser is missing; in CI (CI=true), which installs it, a failure."""
    if not (CHROMIUM and CHROMEDRIVER and SELENIUM):
        message = f"needs {MISSING}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


# JupyterLab's notebook panel (headless, the shell's currentWidget stays null: no focus).
PANEL = """
const panel = () => Array.from(window.jupyterapp.shell.widgets('main'))
  .find(w => w.sessionContext && w.content && w.content.model);
"""
RUN_ALL = (
    PANEL
    + """
const done = arguments[arguments.length - 1];
(async () => {
  await window.jupyterapp.restored;
  while (!panel()) { await new Promise(r => setTimeout(r, 200)); }
  await panel().context.ready;
  await panel().sessionContext.ready;
  window.jupyterapp.shell.activateById(panel().id);
  window.jupyterapp.commands.execute('notebook:run-all-cells');
  done('started');
})().catch(error => done('failed: ' + error));
"""
)
# Every cell has run once its prompt holds a number and the kernel is idle.
BUSY = (
    PANEL
    + """
const kernel = panel().sessionContext.session && panel().sessionContext.session.kernel;
const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
const waiting = prompts.some(p => /\\[( |\\*)\\]/.test(p.textContent));
return !kernel || kernel.status !== 'idle' || waiting;
"""
)
OUTPUTS = (
    PANEL
    + """
const cells = panel().content.model.cells;
const all = [];
for (let i = 0; i < cells.length; i++) { all.push(cells.get(i).toJSON()); }
return JSON.stringify(all);
"""
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def run_folder(tiny_params, tiny_splits) -> Path:
    from lthnb.lottery.experiment import run_experiment

    run_experiment(tiny_params, progress=False, load=lambda _: tiny_splits)
    return tiny_params.run_dir


@pytest.fixture
def lab_notebook(run_folder, tiny_params, tmp_path) -> Path:
    """A copy of 05_plot whose parameters cell names the tiny run, as a user would edit it."""
    notebook = nbformat.read(REPO / "notebooks" / "05_plot.ipynb", 4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = "\n".join(f"{k} = {v!r}" for k, v in tiny_params.to_dict().items())
    folder = tmp_path / "lab"
    folder.mkdir()
    nbformat.write(notebook, folder / "05_plot.ipynb")
    return folder / "05_plot.ipynb"


@pytest.fixture
def jupyterlab(lab_notebook, tmp_path) -> Iterator[str]:
    """JupyterLab serving the notebook's folder on 127.0.0.1; yields the notebook's URL."""
    port, token = _free_port(), secrets.token_hex(16)
    home = tmp_path / "jupyter"
    # No "Jupyter news?" prompt: nothing is fetched from outside, and screenshots stay clear.
    (home / "config" / "labconfig").mkdir(parents=True)
    (home / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LTHNB_HEADLESS", "MPLBACKEND")}
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
    )
    command = [
        *(sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1"),
        *(f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"),
        *(f"--ServerApp.root_dir={lab_notebook.parent}", "--LabApp.expose_app_in_browser=True"),
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(
            lambda: server.poll() is not None or _answers(f"{base}/api/status?token={token}"),
            60,
            "JupyterLab to answer",
        )
        assert server.poll() is None, (tmp_path / "jupyterlab.log").read_text()
        yield f"{base}/lab/tree/{lab_notebook.name}?reset&token={token}"
    finally:
        request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
        try:
            urllib.request.urlopen(request, timeout=5).close()
            server.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def chromium(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.page_load_strategy = "eager"  # JupyterLab's page keeps requests open
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver, tmp_path: Path, name: str) -> None:
    driver.save_screenshot(str(tmp_path / f"{name}.png"))
    if os.environ.get("LTHNB_SCREENSHOTS"):
        folder = Path(os.environ["LTHNB_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / f"{name}.png", folder / f"{name}.png")


def test_05_plot_runs_in_jupyterlab_with_working_widgets(jupyterlab, chromium, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = chromium
    driver.get(jupyterlab)
    _wait(lambda: driver.execute_script("return !!window.jupyterapp"), 60, "JupyterLab's page")
    driver.set_script_timeout(60)
    assert driver.execute_async_script(RUN_ALL) == "started"
    _wait(lambda: not driver.execute_script(BUSY), 120, "every cell to finish")

    cells = json.loads(driver.execute_script(OUTPUTS))
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert all(c["execution_count"] for c in cells if c["cell_type"] == "code" and c["source"]), (
        "not every cell ran"
    )
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert not errors, f"{errors[0]['ename']}: {errors[0]['evalue']}" if errors else ""
    stderr = [o["text"] for o in outputs if o.get("name") == "stderr"]
    assert not stderr, f"stderr blocks: {stderr}"

    # The explorer is rendered by the widget manager, not as its text fallback.
    widget = _wait(
        lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-interact"),
        30,
        "the explorer's widgets",
    )[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", widget)
    assert widget.find_elements(By.CSS_SELECTOR, ".widget-dropdown select")
    handle = widget.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle")
    readout = widget.find_element(By.CSS_SELECTOR, ".widget-slider .widget-readout")
    assert "IntSlider(" not in driver.execute_script("return document.body.innerText")
    view = _wait(lambda: widget.find_elements(By.CSS_SELECTOR, ".widget-output img"), 30, "a view")
    before = (readout.text, view[0].get_attribute("src"))
    _screenshot(driver, tmp_path, "05_plot_explorer")

    handle.send_keys(Keys.ARROW_LEFT)  # one round fewer
    _wait(
        lambda: (
            readout.text != before[0]
            and [img.get_attribute("src") for img in widget.find_elements(By.TAG_NAME, "img")]
            not in ([], [before[1]])
        ),
        30,
        "the view of the new round",
    )
    _screenshot(driver, tmp_path, "05_plot_explorer_after")
    assert int(readout.text) == int(before[0]) - 1
