"""Data loaders: the cifar10-mini slice, digits, synthetic, bad folders, resumable loader."""

import pickle
from pathlib import Path

import pytest
import torch

from nasbench.data import TensorLoader, find_cifar_dir, load_dataset
from nasbench.errors import UserError

MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-mini"
needs_mini = pytest.mark.skipif(find_cifar_dir(MINI) is None, reason="cifar10-mini absent")


@needs_mini
@pytest.mark.parametrize("where", ["parent", "batches"])
def test_cifar10_mini(where):
    d = MINI if where == "parent" else MINI / "cifar-10-batches-py"
    ds = load_dataset("cifar10", d)
    assert ds.train.images.shape[1:] == (3, 32, 32) and ds.train.images.dtype == torch.uint8
    assert len(ds.train) == 4 * 932 and len(ds.test) == 932
    assert set(ds.train.labels.tolist()) <= set(range(10)) and ds.num_classes == 10
    tr, va = ds.search_splits(0.5, seed=0)
    assert len(tr) + len(va) == len(ds.train) and abs(len(tr) - len(va)) <= 1
    x, y = next(iter(TensorLoader(tr, 16, mean=ds.mean, std=ds.std, augment=True,
                                  cutout=16)))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (16,)


def test_digits_resized_and_normalised():
    ds = load_dataset("digits", input_size=16)
    assert ds.train.images.shape[1:] == (3, 16, 16) and len(ds.train) + len(ds.test) == 1797
    x, _ = next(iter(TensorLoader(ds.train, 256, mean=ds.mean, std=ds.std, shuffle=False)))
    assert abs(float(x.mean())) < 0.2 and 0.7 < float(x.std()) < 1.3


def test_synthetic():
    ds = load_dataset("synthetic", input_size=8)
    assert ds.train.images.shape == (512, 3, 8, 8) and len(ds.test) == 128


@pytest.mark.parametrize("case", ["missing", "empty", "file", "corrupt"])
def test_bad_cifar_dir_is_one_clear_error(tmp_path, case):
    if case == "missing":
        d = tmp_path / "nope"
    elif case == "empty":
        d = tmp_path
    elif case == "file":
        d = tmp_path / "f"
        d.write_text("x")
    else:
        d = tmp_path / "cifar-10-batches-py"
        d.mkdir()
        (d / "data_batch_1").write_bytes(b"not a pickle")
        with open(d / "test_batch", "wb") as f:
            pickle.dump({"data": [], "labels": []}, f)
    with pytest.raises(UserError) as ei:
        load_dataset("cifar10", d)
    msg = str(ei.value)
    assert "\n" not in msg and (str(d) in msg or "data_batch_1" in msg)


def test_loader_resumes_exactly():
    ds = load_dataset("synthetic", input_size=8)
    kw = dict(mean=ds.mean, std=ds.std, augment=True, cutout=4, seed=7, max_steps=5)
    a = TensorLoader(ds.train, 32, **kw)
    full = [x for _ in range(2) for x, _ in a]
    b = TensorLoader(ds.train, 32, **kw)
    got = []
    for i, (x, _) in enumerate(b):
        got.append(x)
        if i == 2:
            break
    state = b.state_dict()
    c = TensorLoader(ds.train, 32, **{**kw, "seed": 99})
    c.load_state_dict(state)
    got += [x for x, _ in c] + [x for x, _ in c]
    assert len(got) == len(full) == 10
    assert all(torch.equal(p, q) for p, q in zip(got, full, strict=True))


def test_augmentation_belongs_to_the_data_set():
    """Digits are only shifted (a mirrored digit is another glyph); CIFAR-style data are
    flipped too, and cutout applies only where the policy has it."""
    import torch

    from nasbench.data import TensorLoader, load_digits, load_synthetic
    d = load_digits(16)
    assert d.augment == "crop" and load_synthetic(8).augment == "crop+flip+cutout"
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, :, 1] = 1.0                       # a bright column near the left edge
    from nasbench.data import Split
    split = Split(x, torch.zeros(1, dtype=torch.long))
    seen = set()
    for policy, cut in (("crop", 4), ("crop+flip", 0)):
        q = TensorLoader(split, 1, mean=(0.0,), std=(1.0,), augment=policy, cutout=cut,
                         seed=0)
        cols = set()
        for _ in range(60):
            for xb, _ in q:
                assert xb.sum() > 0                # cutout never applied here
                cols.add(int(xb[0, 0].sum(0).argmax()))
        seen.add((policy, max(cols)))
    # shifts move the column by at most the 1-pixel pad; a flip puts it on the right
    assert dict(seen)["crop"] <= 2 and dict(seen)["crop+flip"] >= 5
