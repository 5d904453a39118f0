"""The package's layering (docs/architecture.md): a module imports only from layers below its own.

Every import is counted, the ones inside functions too (litepose keeps heavy imports local), so a
layer that reaches up "only at run time" is still caught.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "litepose"

#: Each unit (a top-level module or subpackage of litepose) and its layer, lowest first. A unit may
#: import from units of a lower layer only (never its own layer's other units, never a higher one).
LAYERS: dict[str, int] = {
    # 0: leaves: no litepose import (or only the version)
    "__version__": 0, "errors": 0, "interrupt": 0, "home": 0, "device": 0, "normalization": 0, "formats": 0,
    "dist": 0,
    # 1-2: writing and reading files; the compiled kernels (built into litepose's home folder)
    "files": 1, "native": 1,
    "media": 2,
    # 3: datasets, keypoint sets, JSON; an image as the network takes it (below the decoder's back-projection)
    "data": 3, "preprocess": 3,
    # 4: networks and the pure algorithms
    "models": 4, "decode": 4, "track": 4, "viz": 4,
    # 5: running a network (torch, ONNX Runtime, OpenVINO)
    "runtime": 5,
    # 6: exporting (a network to a file of a runtime's format); scoring
    "export": 6, "eval": 6,
    # 7: images in, people out (exports on the fly for a runtime that needs a file)
    "predictor": 7,
    # 8: what is built from them
    "pipeline": 8, "engine": 8, "latency": 8, "testing": 8,
    # 9: the search (trains and evaluates subnets)
    "search": 9,
    # 10: the command line (one unit: cli.py, __main__.py and the verbs of commands/)
    "cli": 10, "__init__": 10,
}  # fmt: skip

#: Files that belong to another unit's layer: the command line is one unit.
SAME_UNIT = {"commands": "cli", "__main__": "cli"}

#: Upward imports still to be removed; each must still exist (so a fixed one is removed here too).
KNOWN_DEBTS: set[tuple[str, str]] = set()


def _unit(dotted: str) -> str:
    parts = dotted.split(".")
    unit = parts[1] if len(parts) > 1 else "__init__"
    return SAME_UNIT.get(unit, unit)


def imports(package: Path = PACKAGE) -> dict[tuple[str, str], list[str]]:
    """``(importer unit, imported unit) -> [file:line, ...]`` over the whole package."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in sorted(package.rglob("*.py")):
        rel = f.relative_to(package.parent).with_suffix("")
        module = ".".join(rel.parts)
        parent = module if f.name == "__init__.py" else module.rsplit(".", 1)[0]
        parent = parent.removesuffix(".__init__")
        me = "__init__" if module == "litepose.__init__" else _unit(module)
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = parent.split(".")[: len(parent.split(".")) - (node.level - 1)]
                if node.module:
                    targets = [".".join([*base, node.module])]
                else:
                    targets = [".".join([*base, a.name]) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("litepose."):
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("litepose.")]
            for t in targets:
                other = "__version__" if t == "litepose.__version__" else _unit(t)
                if other != me:
                    found[(me, other)].append(f"{f.relative_to(package.parent)}:{node.lineno}")
    return found


def test_every_unit_has_a_layer() -> None:
    units = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py"}
    units |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted({SAME_UNIT.get(u, u) for u in units} - set(LAYERS))
    assert not missing, f"add these to LAYERS and to docs/architecture.md: {missing}"


def test_no_module_imports_from_its_own_layer_or_above() -> None:
    bad = {
        pair: where for pair, where in imports().items()
        if LAYERS[pair[1]] >= LAYERS[pair[0]] and pair not in KNOWN_DEBTS
    }  # fmt: skip
    assert not bad, "imports against the layering (docs/architecture.md):\n" + "\n".join(
        f"{a} (layer {LAYERS[a]}) -> {b} (layer {LAYERS[b]}): {', '.join(w[:3])}" for (a, b), w in sorted(bad.items())
    )


def test_known_debts_are_still_debts() -> None:
    found = imports()
    fixed = sorted(pair for pair in KNOWN_DEBTS if pair not in found)
    assert not fixed, f"fixed, so remove from KNOWN_DEBTS (and docs/architecture.md): {fixed}"


def test_the_layering_test_sees_an_upward_import(tmp_path) -> None:
    """The walker itself: a file importing upward, locally inside a function, is found."""
    fake = tmp_path / "litepose"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "__init__.py").write_text("def f():\n    from ..engine import trainer\n")
    (fake / "engine").mkdir()
    (fake / "engine" / "loop.py").write_text("from ..data import x\nimport litepose.media\n")
    found = imports(fake)
    assert set(found) == {("data", "engine"), ("engine", "data"), ("engine", "media")}
