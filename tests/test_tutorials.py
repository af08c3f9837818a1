"""The tutorial chapters in tutorials/: each runs without error in fast mode, and the stored notebooks are
their sources, executed in full.

Every chapter asserts its own key numbers in its cells (e.g. N(0, 1).prob(0.2) = 0.391, the noise scale 0.375
recovered, mutual information higher off the data), so running it checks behaviour, not only that it runs.
A chapter runs in a fresh kernel, as a reader's would; nbclient raises on the first failing cell with its
traceback.
"""

import importlib.util
from pathlib import Path

import nbformat
import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"


def _load_runner():
    spec = importlib.util.spec_from_file_location("tutorial_notebooks", TUTORIALS / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


notebooks = _load_runner()
CHAPTERS = notebooks.chapters()


def test_one_chapter_per_article_of_the_series_each_reading_the_fast_mode_first():
    assert [source.name[:2] for source in CHAPTERS] == [f"{number:02d}" for number in range(1, 12)]
    for source in CHAPTERS:
        first_code_cell = next(cell for cell in notebooks.build(source).cells if cell.cell_type == "code")
        assert notebooks.FAST_ENV in first_code_cell.source, f"{source.name} does not read {notebooks.FAST_ENV} first"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda source: source.stem)
def test_chapter_runs_in_fast_mode(source):
    notebook = notebooks.execute(notebooks.build(source), fast=True, timeout=600)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code)


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda source: source.stem)
def test_stored_notebook_is_its_source_executed_in_full(source):
    path = notebooks.notebook_path(source)
    assert path.exists(), f"{path.name} is missing: run `make tutorials`"
    stored = nbformat.read(path, as_version=4)
    built = notebooks.build(source)
    assert [(c.cell_type, c.source) for c in stored.cells] == [(c.cell_type, c.source) for c in built.cells], (
        f"{path.name} is stale: its cells differ from {source.name}; run `make tutorials`"
    )
    assert stored.metadata.get("tfp_bnn_tutorial") == {"fast": False}, f"{path.name} was not executed in full mode"
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    outputs = [output for cell in code for output in cell.outputs]
    assert all(cell.execution_count for cell in code)
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs), "no figure in the stored notebook"
    text = nbformat.writes(stored)
    assert str(TUTORIALS.parent) not in text, "the stored outputs mention this machine's paths"
