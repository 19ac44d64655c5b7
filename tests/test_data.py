"""The loader (kron_utils) and the fetcher (kron_report) on tiny hand-written IDX files. No network."""
import hashlib

import numpy as np
import pytest
import torch

import kron_report as kr
import kron_utils as ku
from conftest import write_idx


def test_read_idx_round_trips(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x", data)
    np.testing.assert_array_equal(ku.read_idx(tmp_path / "x"), data)


def test_load_normalises_like_torchvision(tiny_mnist):
    x, y = ku.load_dataset(tiny_mnist, "train")
    raw = ku.read_idx(tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte")
    expected = (torch.tensor(raw, dtype=torch.float32).reshape(40, 784) / 255 - 0.1307) / 0.3081
    assert x.shape == (40, 784) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x, expected)
    assert ku.load_dataset(tiny_mnist, "test")[0].shape == (20, 784)


def test_truncated_file_is_named(tiny_mnist):
    path = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*truncated"):
        ku.load_dataset(tiny_mnist)


def test_bad_header_is_named(tiny_mnist):
    path = tiny_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*header"):
        ku.load_dataset(tiny_mnist, "test")


def test_mismatched_counts_and_bad_labels(tiny_mnist):
    raw = tiny_mnist / "MNIST" / "raw"
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(39, dtype=np.uint8))
    with pytest.raises(ValueError, match="do not match"):
        ku.load_dataset(tiny_mnist)
    write_idx(raw / "train-labels-idx1-ubyte", np.full(40, 12, dtype=np.uint8))
    with pytest.raises(ValueError, match="labels must be 0..9"):
        ku.load_dataset(tiny_mnist)


def test_verify_file_checks_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 100)
    kr.verify_file(path, hashlib.sha256(b"abc" * 100).hexdigest())
    path.write_bytes(b"abd" * 100)
    with pytest.raises(ValueError, match=r"f: corrupt"):
        kr.verify_file(path, hashlib.sha256(b"abc" * 100).hexdigest())


def test_local_files_that_are_not_the_official_ones_are_rejected(tiny_mnist):
    """The home-made files do not match the official SHA-256: an error names one, no fallback."""
    with pytest.raises(ValueError, match="idx.-ubyte: corrupt"):
        kr.fetch_dataset(tiny_mnist, "mnist", sources=("local", "offline"))


def test_every_source_failing_says_where_to_put_the_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        kr.fetch_dataset(tmp_path, "mnist", sources=("local",))
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message


def test_gz_files_are_decompressed(tmp_path):
    import gzip
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "plain", np.ones((2, 28, 28), dtype=np.uint8))
    for name in ku.IDX_FILES:
        (raw / f"{name}.gz").write_bytes(gzip.compress((raw / "plain").read_bytes()))
    with pytest.raises(ValueError, match="corrupt"):  # decompressed, then checked against the official hash
        kr.fetch_dataset(tmp_path, "fashion-mnist", sources=("local",))
    assert (raw / "train-images-idx3-ubyte").exists()


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'emnist'"):
        ku.load_dataset("data", dataset="emnist")


def test_synthetic_data_is_deterministic():
    a, b = ku.load_dataset(dataset="synthetic"), ku.load_dataset(dataset="synthetic")
    torch.testing.assert_close(a[0], b[0])
    assert a[0].shape == (512, 784) and set(a[1].tolist()) == set(range(10))


def test_loading_missing_files_names_them_and_installs_nothing(tmp_path, monkeypatch):
    import subprocess
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("loading ran a subprocess"))
    with pytest.raises(FileNotFoundError) as info:
        ku.load_dataset(tmp_path, "train", dataset="fashion-mnist")
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "make" not in message and not (tmp_path / "FashionMNIST").exists()  # the library names no make target
    with pytest.raises(FileNotFoundError, match="make data DATASET=fashion-mnist"):  # the report side does
        kr.verify_dataset(tmp_path, "fashion-mnist")


def test_fetch_announces_each_source_and_gives_up_on_a_hanging_one(tmp_path, monkeypatch):
    import subprocess
    said = []

    def hangs(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])
    monkeypatch.setattr(subprocess, "run", hangs)
    with pytest.raises(FileNotFoundError, match="no answer within 3 s"):
        kr.fetch_dataset(tmp_path, "mnist", sources=("torchvision",), timeout=3, log=said.append)
    assert said == ["mnist: trying torchvision's download (gives up after 3 s)"]


@pytest.mark.parametrize("data_dir", ["", "   "])
def test_fetch_rejects_an_empty_data_dir(data_dir):
    with pytest.raises(ValueError, match="data_dir must name a folder"):
        kr.fetch_dataset(data_dir, "mnist", sources=("local",))


def test_verify_dataset_names_a_file_that_is_not_the_official_one(tiny_mnist):
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: corrupt or not the official file"):
        kr.verify_dataset(tiny_mnist, "mnist")
    with pytest.raises(FileNotFoundError, match="make data DATASET=fashion-mnist"):
        kr.verify_dataset(tiny_mnist, "fashion-mnist")
    assert kr.verify_dataset(tiny_mnist, "synthetic") == tiny_mnist  # nothing to verify
