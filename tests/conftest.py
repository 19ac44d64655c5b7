"""Shared helpers: small thread counts, hand-written IDX files, and running a notebook with papermill.

The suite trains eagerly (KRON_EAGER=1, inherited by the notebooks' kernels): compiling every tiny net would
cost more than it saves. test_train.py checks the compiled step against the eager one explicitly."""
import os
import struct

import numpy as np
import papermill
import pytest
import torch

import kron_report as kr

os.environ["KRON_EAGER"] = "1"


@pytest.fixture(autouse=True)
def _small_threads():
    torch.set_num_threads(2)


def write_idx(path, array: np.ndarray) -> None:
    """Write uint8 data as IDX by hand (independent of kron_utils.read_idx)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path):
    """data_dir holding four small IDX files in torchvision's MNIST/raw layout."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 40), ("t10k", 20)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    return tmp_path


def execute(name, tmp_path, **parameters):
    """Run notebooks/<name> with papermill into tmp_path; return the executed notebook."""
    return papermill.execute_notebook(str(kr.ROOT / "notebooks" / name), str(tmp_path / f"out-{name}"),
                                      parameters=parameters, kernel_name="python3", progress_bar=False,
                                      cwd=str(kr.ROOT))


def execute_stages(stages) -> None:
    """Execute notebooks (name, parameters, output) stage after stage; those of one stage read nothing the others
    write, and run two at a time (a kernel is mostly one busy Python thread; this halves the fixtures' time)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=2) as pool:
        for stage in stages:
            list(pool.map(lambda job: kr.execute_notebook(kr.ROOT / "notebooks" / f"{job[0]}.ipynb", *job[1:]), stage))


@pytest.fixture(scope="session")
def default_pages(tmp_path_factory):
    """Every report notebook executed once with its defaults from the committed runs (nothing is trained; figures go
    to a temporary folder), and every page rendered from them; Part 1's one-epoch demo trains on the synthetic
    stand-in, so no test needs MNIST files. Shared by the browser test and the golden snapshot."""
    out = tmp_path_factory.mktemp("default-pages")
    executed = out / "notebooks"
    executed.mkdir()
    figures = dict(figures_dir=str(out / "figures"))
    execute_stages([[(name, parameters, executed / f"{name}.ipynb") for name, parameters in (
        ("03_report", figures), ("00_article", figures), ("04_beyond", figures), ("05_why", figures),
        ("06_adapters", figures), ("01_kronecker_product", dict(dataset="synthetic", **figures)))]])
    return dict(notebooks=executed, pages={page: kr.render_page(page, executed, out) for page in kr.PAGES})
