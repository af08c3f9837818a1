"""Build the tutorial notebooks from their sources and execute them.

Every chapter is written as a Python file in the *percent* format
(``# %%`` starts a code cell, ``# %% [markdown]`` a cell of prose in comment
lines), so a review reads plain text; jupytext turns it into the notebook
``NN_name.ipynb`` next to it, which is stored executed, with its outputs and
figures, for readers who do not run anything.

    python tutorials/notebooks.py             # every chapter in full, saved in place (`make tutorials`)
    python tutorials/notebooks.py 04 07       # chapters whose file name starts with 04 or 07
    python tutorials/notebooks.py --fast      # fast mode: fewer epochs and samples, nothing saved

Fast mode sets ``TFP_BNN_TUTORIAL_FAST=1`` in the kernel's environment; each
chapter reads it in its first cell. The test suite runs every chapter that
way (``tests/test_tutorials.py``).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbclient
import nbformat

DIRECTORY = Path(__file__).resolve().parent
FAST_ENV = "TFP_BNN_TUTORIAL_FAST"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def chapters(prefixes=()):
    """The chapter sources ``NN_name.py``, in order; only those starting with one of ``prefixes`` if given."""
    sources = sorted(DIRECTORY.glob("[0-9][0-9]_*.py"))
    if prefixes:
        sources = [s for s in sources if s.name.startswith(tuple(prefixes))]
    return sources


def notebook_path(source):
    return Path(source).with_suffix(".ipynb")


def build(source):
    """The notebook of a chapter source, not executed."""
    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata.pop("jupytext", None)  # the pairing is by file name; keep the metadata stable
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def execute(notebook, fast=False, timeout=1800):
    """Run every cell in a fresh kernel (working directory ``tutorials/``); raises on the first error.

    The notebook's metadata records the mode, ``{"tfp_bnn_tutorial": {"fast": ...}}``.
    """
    env = dict(os.environ)
    env.pop(FAST_ENV, None)
    if fast:
        env[FAST_ENV] = "1"
    client = nbclient.NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=KERNELSPEC["name"],
        record_timing=False,
        resources={"metadata": {"path": str(DIRECTORY)}},
    )
    client.execute(env=env)
    notebook.metadata["tfp_bnn_tutorial"] = {"fast": bool(fast)}
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(description="Execute the tutorial chapters.")
    parser.add_argument("chapters", nargs="*", help="chapter number prefixes, e.g. 04 (default: all)")
    parser.add_argument("--fast", action="store_true", help="fast mode; the notebooks are not saved")
    args = parser.parse_args(argv)
    sources = chapters(args.chapters)
    if not sources:
        parser.error(f"no chapter in {DIRECTORY} starts with {', '.join(args.chapters)}")
    for source in sources:
        start = time.perf_counter()
        notebook = execute(build(source), fast=args.fast)
        if not args.fast:
            nbformat.write(notebook, notebook_path(source))
        print(f"{source.name}: {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
