"""The git filter that commits notebooks without outputs.

`python -m lthnb.notebook.git_filter clean [PATH]` is the git clean filter that `make setup`
installs (`python -m lthnb.notebook.git_filter install-git-filter`): what git stores has no
outputs, no execution counts and none of the metadata JupyterLab adds, so running and saving
a notebook changes nothing that would be committed. git runs it on every add: no TensorFlow,
no nbformat.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

GIT_FILTER = "lthnb-notebook"  # the name .gitattributes gives notebooks
KERNEL_DISPLAY_NAMES = {"python3": "Python 3"}  # JupyterLab writes "Python 3 (ipykernel)"


def clean_notebook(text: str) -> str:
    """A notebook as committed: no outputs or execution counts, cell metadata only its tags,
    notebook metadata only the kernel and the language's name. Not a notebook: unchanged.

    Plain json, written as nbformat and JupyterLab write it: nbformat itself takes a second to
    import, on every `git add` of a notebook.
    """
    try:
        notebook = json.loads(text)
        if notebook.get("nbformat") != 4:
            return text
        for cell in notebook["cells"]:
            tags = cell.get("metadata", {}).get("tags")
            cell["metadata"] = {"tags": tags} if tags else {}
            if cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
        notebook["metadata"] = _committed_metadata(notebook.get("metadata", {}))
    except (ValueError, TypeError, KeyError, AttributeError):  # not a notebook: stored as it is
        return text
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _committed_metadata(metadata: dict) -> dict:
    kernel = metadata.get("kernelspec", {})
    name = kernel.get("name", "python3")
    return {
        "kernelspec": {
            "display_name": KERNEL_DISPLAY_NAMES.get(name, kernel.get("display_name", name)),
            "language": kernel.get("language", "python"),
            "name": name,
        },
        "language_info": {"name": metadata.get("language_info", {}).get("name", "python")},
    }


def install_git_filter(folder: Path | None = None) -> Path | None:
    """Point this clone's git config at the clean filter; the repository root, or None outside
    git. `.gitattributes` (committed) assigns the filter to `*.ipynb`."""
    top = _git(["rev-parse", "--show-toplevel"], folder or Path.cwd())
    if top is None:
        return None
    root = Path(top)
    command = f"{shlex.quote(os.path.abspath(sys.executable))} -m lthnb.notebook.git_filter clean"
    settings = {
        f"filter.{GIT_FILTER}.clean": command,
        f"filter.{GIT_FILTER}.smudge": "cat",
        f"filter.{GIT_FILTER}.required": "true",
        f"diff.{GIT_FILTER}.textconv": command,
    }
    for key, value in settings.items():
        subprocess.run(["git", "config", "--local", key, value], cwd=root, check=True)
    return root


def committed_text(path: str | Path) -> str:
    """The file's text as `git add` would store it: through its clean filter, if one applies."""
    path = Path(path).resolve()
    text = path.read_text(encoding="utf-8")
    attribute = _git(["check-attr", "filter", "--", path.name], path.parent)
    driver = attribute.rsplit(": ", 1)[-1] if attribute else "unspecified"
    command = None
    if driver not in ("unspecified", "unset", "set"):
        command = _git(["config", "--get", f"filter.{driver}.clean"], path.parent)
    if not command:
        return text
    root = _git(["rev-parse", "--show-toplevel"], path.parent)
    cleaned = subprocess.run(
        command, shell=True, input=text.encode("utf-8"), capture_output=True, cwd=root, check=True
    )
    return cleaned.stdout.decode("utf-8")


def _git(arguments: list[str], folder: Path) -> str | None:
    """git's output (stripped), or None when git fails or is missing."""
    try:
        done = subprocess.run(["git", *arguments], cwd=folder, capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lthnb.notebook.git_filter", description=__doc__
    )
    commands = parser.add_subparsers(dest="command", required=True)
    clean = commands.add_parser("clean", help="print a notebook as committed (git's filter)")
    clean.add_argument("path", nargs="?", help="the notebook; standard input when absent")
    commands.add_parser("install-git-filter", help="install the filter in this clone")
    args = parser.parse_args(argv)
    if args.command == "clean":
        source = Path(args.path).read_bytes() if args.path else sys.stdin.buffer.read()
        try:
            cleaned = clean_notebook(source.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:  # not a notebook: stored as it is
            cleaned = source
        sys.stdout.buffer.write(cleaned)
        return 0
    root = install_git_filter()
    if root is None:
        print("not a git clone: no notebook filter installed")
    else:
        print(f"notebook filter installed in {root / '.git' / 'config'}: outputs are not committed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
