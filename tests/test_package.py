"""The package's shape: subpackages in layers (nothing imports upward) and the short public API."""
import ast
import pathlib

import facerecon_jax

PKG = pathlib.Path(facerecon_jax.__file__).parent
LAYERS = ("io", "models", "geometry", "render", "photo", "fit", "aggregation", "training",
          "pipeline", "eval")


def imported_subpackages(path: pathlib.Path):
    """(line, subpackage) for every facerecon_jax import in a file, function-level ones too."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "facerecon_jax":
                names = [a.name for a in node.names]
            elif node.module.startswith("facerecon_jax."):
                names = [node.module.split(".")[1]]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names
                     if a.name.startswith("facerecon_jax.")]
        for n in names:
            yield node.lineno, n


def test_modules_live_in_subpackages():
    flat = sorted(p.name for p in PKG.glob("*.py") if p.name != "__init__.py")
    assert flat == []
    subs = sorted(p.name for p in PKG.iterdir() if (p / "__init__.py").exists())
    assert subs == sorted(LAYERS)


def test_no_module_imports_upward():
    bad = []
    for layer in LAYERS:
        for path in sorted((PKG / layer).glob("*.py")):
            for line, sub in imported_subpackages(path):
                if sub not in LAYERS:
                    bad.append(f"{path.relative_to(PKG)}:{line} imports facerecon_jax.{sub}, "
                               "which is not a subpackage")
                elif LAYERS.index(sub) > LAYERS.index(layer):
                    bad.append(f"{path.relative_to(PKG)}:{line} imports {sub} (above {layer})")
    assert bad == []


def test_layer_check_sees_an_upward_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from facerecon_jax.eval import evaluation\n")
    assert list(imported_subpackages(f)) == [(2, "eval")]


def test_public_api_names_resolve():
    for name in facerecon_jax.__all__:
        obj = getattr(facerecon_jax, name)
        assert obj.__name__ == name, name
    assert "load_face_model" in dir(facerecon_jax)
