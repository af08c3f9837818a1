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


# The modules that export names, and the command-line modules, whose entry points
# (``main``) are documented but export nothing and need no example.
PUBLIC_MODULES = [name for name in MODULES if hasattr(importlib.import_module(name), "__all__")]
ENTRY_POINTS = ["tfp_bnn.cli", "tfp_bnn.demo"]


def test_every_module_but_the_entry_points_exports_its_names():
    private = [name for name in MODULES if name.rpartition(".")[2].startswith("_")]
    assert sorted(set(MODULES) - set(PUBLIC_MODULES) - set(private)) == ENTRY_POINTS
    assert len(PUBLIC_MODULES) >= 14  # tfp_bnn and its 13 submodules with an __all__


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_class_function_and_module_shows_an_example(name):
    # The Keras convention: a short runnable example in the docstring of every layer,
    # loss and entry point, here for every class, function and module a module's
    # __all__ exports; the test above runs them. The docstring must be the object's own,
    # not one inherited from a base class (inspect.getdoc would return that).
    module = importlib.import_module(name)
    public = {attribute: getattr(module, attribute) for attribute in module.__all__}
    documented = [obj for obj in public.values() if inspect.isclass(obj) or inspect.isroutine(obj)
                  or inspect.ismodule(obj)]
    if name == "tfp_bnn":
        assert len(documented) >= 35
    without = sorted(attribute for attribute, obj in public.items() if obj in documented
                     and ">>>" not in (obj.__doc__ or ""))
    assert without == []
    assert ">>>" in module.__doc__


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_points_say_what_they_do(name):
    main = importlib.import_module(name).main
    assert inspect.getdoc(main), f"{name}.main has no docstring"
