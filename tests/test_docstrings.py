"""Every example in tfp_bnn's docstrings runs and shows what it says it shows.

A module's examples run in one fresh namespace (so each imports what it
uses), its own docstring's first and then the rest in order, as a reader meets them (the function examples in
tfp_bnn.plots start from the module's ``model``). Examples that need
something outside the project (a running TF Serving) are marked
``# doctest: +SKIP``. Each module runs in a fresh temporary folder, where
examples that save files write them.
"""

import doctest
import importlib
import inspect
import pkgutil

import matplotlib
import pytest

import tfp_bnn

matplotlib.use("Agg")

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(module):
    tests = [test for test in doctest.DocTestFinder().find(module) if test.examples]
    return sorted(tests, key=lambda test: (test.name != module.__name__, test.lineno or 0))


MODULES = ["tfp_bnn"] + sorted(
    name for _, name, _ in pkgutil.iter_modules(tfp_bnn.__path__, "tfp_bnn.") if not name.endswith("__main__")
)
WITH_EXAMPLES = [name for name in MODULES if _examples(importlib.import_module(name))]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run_and_show_what_they_say(name, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    tests = _examples(module)
    skipped = sum(bool(example.options.get(doctest.SKIP)) for test in tests for example in test.examples)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    # A fresh namespace, not the module's: an example must import what it uses, as a
    # reader who pastes it into a new session has to.
    namespace = {"__name__": "__main__"}
    try:
        for test in tests:
            test.globs = namespace
            runner.run(test, out=report.append, clear_globs=False)
    finally:
        plt.close("all")
    assert runner.failures == 0, "".join(report)
    assert runner.tries == sum(len(test.examples) for test in tests) - skipped > 0


def test_every_public_class_function_and_module_shows_an_example():
    # The Keras convention: a short runnable example in the docstring of every layer,
    # loss and entry point; the test above runs them.
    public = {name: getattr(tfp_bnn, name) for name in tfp_bnn.__all__}
    documented = [obj for obj in public.values() if inspect.isclass(obj) or inspect.isroutine(obj)
                  or inspect.ismodule(obj)]
    assert len(documented) >= 35
    without = sorted(name for name, obj in public.items() if obj in documented
                     and ">>>" not in (inspect.getdoc(obj) or ""))
    assert without == []
    assert ">>>" in tfp_bnn.__doc__
