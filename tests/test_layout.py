"""The package's shape: one folder per page over a small shared core, each name exported once, and a README that
names what exists. Each checker is shown failing on a hand-made case first."""
import ast
import collections
import re
import types

import kron_report as kr

PACKAGE = kr.ROOT / "kron_report"
PAGES = {p.__name__.rsplit(".", 1)[-1] for p in kr.PAGE_PACKAGES}
#: A module may be 'about' 400 lines long.
MAX_LINES = 420


def imported_packages(source: str, module: str) -> set[str]:
    """The top-level parts of kron_report that ``source`` (the text of kron_report's ``module``, dotted below the
    package, such as 'why.prose') imports, relative or absolute."""
    here = module.split(".")[:-1]   # the folder the module sits in, below the package
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:   # 'from . import x' at the top of the package
                    parts = [alias.name for alias in node.names]
                    found.update(parts)
                    continue
            elif node.module and node.module.startswith("kron_report."):
                parts = node.module.split(".")[1:]
            else:
                continue
            found.add(parts[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("kron_report."))
    return found


def cross_page_imports() -> list[str]:
    """'page/module imports other' for every page module that imports another page folder."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if len(parts) < 2 or parts[0] not in PAGES:
            continue
        module = ".".join(parts)
        others = imported_packages(path.read_text(), module) & (PAGES - {parts[0]})
        problems += [f"{module} imports {other}" for other in sorted(others)]
    return problems


def test_the_import_reader_sees_relative_and_absolute_imports():
    assert imported_packages("from ..why.plan import WhyPlan\nfrom .prose import x\n", "beyond.figures") == {"why", "beyond"}
    assert imported_packages("from ..stats import final_epochs", "post.prose") == {"stats"}
    assert imported_packages("import kron_report.adapters.arms\nfrom kron_report.why import plan", "post.plan") == {
        "adapters", "why"}
    assert imported_packages("from .store import cached\nfrom .post.plan import ReportPlan", "front") == {"store", "post"}


def test_no_page_folder_imports_another():
    assert cross_page_imports() == []


def test_the_shared_core_imports_no_page():
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem in ("__init__", "front"):   # the package's index and the front matter read every page
            continue
        assert not imported_packages(path.read_text(), path.stem) & PAGES, path.name


def test_every_module_declares_all_and_each_name_is_exported_once():
    names = collections.Counter()
    for module in kr.MODULES:
        assert isinstance(module.__all__, list), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
        names.update(module.__all__)
    assert [name for name, count in names.items() if count > 1] == []
    for path in PACKAGE.rglob("*.py"):
        assert re.search(r"^__all__ = ", path.read_text(), flags=re.M), path


def test_kr_exports_no_third_party_module():
    for name in dir(kr):
        value = getattr(kr, name)
        if isinstance(value, types.ModuleType):
            assert value.__name__.startswith("kron_report."), (name, value.__name__)
    assert not {"pd", "torch", "np", "ku", "nn"} & set(dir(kr))


def test_no_module_is_much_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def readme_layout() -> set[str]:
    """The kron_report modules and folders the README's Layout section names (indented under kron_report/)."""
    text = (kr.ROOT / "README.md").read_text()
    block = text[text.index("## Layout"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    return {m.group(1) for m in re.finditer(r"^  (\S+?)/?(?:\.py)?(?:,|\s)", block, flags=re.M)}


def test_the_readme_names_every_module_and_folder_of_the_package():
    listed = readme_layout()
    present = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}   # pages, templates
    assert listed == present, (sorted(listed - present), sorted(present - listed))
