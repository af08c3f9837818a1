"""The package's module graph: no module reaches into another's private names, nor imports models inside a function.

Private names (``_x``) are a module's own: another module that uses one ties itself to a
detail its owner may change without a word (one module per concept). The
names listed here are the ones still shared; a new one fails until it is made public in its
owner (or the code moves there).
"""

import ast
import pathlib

import tfp_bnn

PACKAGE = pathlib.Path(tfp_bnn.__file__).parent

# (user, owner, name): private names still used across modules, to be removed one by one.
KNOWN = {
    ("cli", "models", "_scale_or_one"),
    ("demo", "cli", "_non_negative_int"),
    ("demo", "cli", "_positive_int"),
    ("models", "heads", "_StandardizedRegressionHead"),
    ("models", "heads", "_sync_step_shapes"),
    ("models", "sampling", "_entered"),
    ("plots", "metrics", "_labels_and_probs"),
    ("plots", "metrics", "_squeezed_shape"),
    ("prediction", "heads", "_sync_step_shapes"),
    ("prediction", "sampling", "_one_pass_draws"),
    ("serving", "prediction", "_head"),
    ("serving", "prediction", "_input_shape"),
    ("serving", "prediction", "_refuse_tfp_variational_layers"),
    ("models", "layers", "_BayesianLayer"),
    ("prediction", "layers", "_BayesianLayer"),
}


def _private_uses(path):
    """``(owner, name)`` of every private name of another tfp_bnn module that ``path`` uses."""
    tree = ast.parse(path.read_text())
    aliases, uses = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tfp_bnn":
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfp_bnn."):
            owner = node.module.split(".", 1)[1]
            uses |= {(owner, a.name) for a in node.names if a.name.startswith("_") and not owner.startswith("_")}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            uses.add((aliases[node.value.id], node.attr))
    return uses


def _function_level_imports(path):
    tree = ast.parse(path.read_text())
    found = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfp_bnn.models"):
                    found.append((path.stem, function.name, node.module))
    return found


def test_no_new_private_names_across_modules():
    used = {(path.stem, owner, name) for path in PACKAGE.glob("*.py") for owner, name in _private_uses(path)}
    assert sorted(used - KNOWN) == []


def test_no_module_imports_models_inside_a_function():
    # models builds on prediction's neighbours; a function-level import of it hides a cycle.
    found = [hit for path in PACKAGE.glob("*.py") if path.stem != "models" for hit in _function_level_imports(path)]
    assert found == [("prediction", "_warn_of_squashed_logits", "tfp_bnn.models")]
