"""What a user gets from the distributions: the sdist carries what its tests need; extras are named when missing."""

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_plots_without_matplotlib_names_the_extra():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "try:\n"
        "    from tfp_bnn import plots\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'tfp-bnn[plots]'" in out


def test_sdist_holds_the_tests_and_everything_they_read(tmp_path):
    # The PEP 517 hook pip and `python -m build` call (it writes tfp_bnn.egg-info/, ignored by git).
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))"
    name = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.split()[-1]
    with tarfile.open(tmp_path / name) as sdist:
        root = name.removesuffix(".tar.gz")
        shipped = {member.name.removeprefix(root + "/") for member in sdist.getmembers() if member.isfile()}
    wanted = {"LICENSE", "Makefile", "README.md", "setup.cfg", "pyproject.toml"} | {
        path.relative_to(REPO).as_posix()
        for folder in ("tfp_bnn", "tests", "benchmarks", "tutorials")
        for path in (REPO / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert sorted(wanted - shipped) == []


@pytest.mark.parametrize("option, value", [("--samples", "0"), ("--epochs", "0"), ("--seed", "-1")])
def test_demo_refuses_a_bad_option_before_training(capsys, tmp_path, option, value):
    from tfp_bnn import demo

    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--out", str(tmp_path / "demo"), option, value])
    assert exit_info.value.code == 2
    assert f"argument {option}: must be" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()  # refused before `fit` replaced the folder


def test_wheel_carries_the_license_text_its_metadata_names(tmp_path):
    code = f"from setuptools import build_meta; print(build_meta.build_wheel({str(tmp_path)!r}))"
    name = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.split()[-1]
    with zipfile.ZipFile(tmp_path / name) as wheel:
        metadata = wheel.read("tfp_bnn-0.1.0.dist-info/METADATA").decode()
        # dist-info/LICENSE (setuptools < 74, as in a new Python 3.11 venv) or dist-info/licenses/LICENSE.
        licenses = [n for n in wheel.namelist()
                    if n.startswith("tfp_bnn-0.1.0.dist-info/") and n.rsplit("/", 1)[-1].startswith("LICENSE")]
    assert "License: Apache-2.0" in metadata or "License-Expression: Apache-2.0" in metadata
    assert licenses and "Apache License" in zipfile.ZipFile(tmp_path / name).read(licenses[0]).decode()
