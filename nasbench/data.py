"""Data sets and a resumable, deterministic in-memory loader.

* ``cifar10``: the standard ``cifar-10-batches-py`` pickles (every ``data_batch_*``
  present, plus ``test_batch``); checksums of an existing folder are not checked, so a
  slice such as ``cifar10-mini`` works. ``download=True`` fetches the real data set with
  torchvision when the folder has none.
* ``digits``: scikit-learn's bundled 8x8 digits (1797 images, no file, no network),
  resized bilinearly to the deploy input size and repeated to 3 channels; a fixed split
  of 1497 train / 300 test images.
* ``synthetic``: random class-dependent patterns, for speed tests only.
* ``folder``: the user's own images, a folder of class folders (torchvision's
  ImageFolder), with ``train/`` and ``test/`` folders or a fixed stratified split
  (:func:`load_folder`).

Augmentation belongs to the data set (``Dataset.augment``): for CIFAR-10 the DARTS
code's random crop with zero padding (4 px at 32x32, input/8 in general), horizontal
flip and, for the retrain, cutout (applied after normalisation); for digits only the
crop's small shifts (a mirrored digit is another glyph, and cutout erases half of one).
Normalisation uses the data set's statistics: the
usual CIFAR-10 training-set mean/std for cifar10, the training split's own per-channel
mean/std for the others.

Batches are made from tensors in memory by :class:`TensorLoader`, whose shuffling and
augmentation draw from its own ``torch.Generator``; its ``state_dict`` makes a killed
run resume on exactly the batch it would have seen next.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nasbench.errors import UserError

CIFAR_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR_STD = (0.24703233, 0.24348505, 0.26158768)
CIFAR_DIRNAME = "cifar-10-batches-py"


@dataclass
class Split:
    """Images [N, C, H, W] (uint8 0-255 or float 0-1) and int64 labels [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: torch.Tensor) -> Split:
        """Returns the split restricted to ``index``."""
        return Split(self.images[index], self.labels[index])


@dataclass
class Dataset:
    """A loaded data set: train and test splits, classes, channels, normalisation."""

    name: str
    train: Split
    test: Split
    num_classes: int
    in_channels: int
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    #: the training augmentation that suits the data (see :class:`TensorLoader`):
    #: CIFAR crops, flips and (retrain) cutout; digits only shift (a flipped 2 is no 2)
    augment: str = "crop+flip+cutout"

    def search_splits(self, portion: float = 0.5, seed: int = 0) -> tuple[Split, Split]:
        """Returns (train, val) halves of the training split for the search (a seeded
        permutation; ``portion`` goes to the weights, the rest to the alphas)."""
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(self.train), generator=g)
        n = int(round(portion * len(perm)))
        return self.train.subset(perm[:n]), self.train.subset(perm[n:])

    def describe(self) -> dict:
        """Returns the JSON-ready summary of the data set."""
        return {"name": self.name, "source": self.source, "train": len(self.train),
                "test": len(self.test), "classes": self.num_classes,
                "in_channels": self.in_channels, "input_size": self.input_size,
                "mean": list(self.mean), "std": list(self.std)}


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def find_cifar_dir(data_dir: str | Path) -> Path | None:
    """Returns the ``cifar-10-batches-py`` folder at or under ``data_dir``, or None."""
    p = Path(data_dir).expanduser()
    for cand in (p, p / CIFAR_DIRNAME):
        if (cand / "test_batch").is_file() and any(cand.glob("data_batch_*")):
            return cand
    return None


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="latin1")
        x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d.get("labels", d.get("fine_labels")), dtype=np.int64)
    except Exception as e:  # noqa: BLE001 - any corruption becomes one user-facing line
        raise UserError(f"cannot read CIFAR-10 batch {path}: {e.__class__.__name__}: {e}") \
            from None
    if len(x) != len(y):
        raise UserError(f"CIFAR-10 batch {path} has {len(x)} images but {len(y)} labels")
    return x, y


def default_data_dir() -> Path:
    """Returns the per-user data folder used when no --data-dir is given."""
    from platformdirs import user_data_dir
    return Path(user_data_dir("nasbench")) / "data"


def load_cifar10(data_dir: str | Path | None, download: bool = False,
                 input_size: int = 32) -> Dataset:
    """Returns CIFAR-10 from a ``cifar-10-batches-py`` folder (or its parent)."""
    root = Path(data_dir).expanduser() if data_dir else default_data_dir()
    folder = find_cifar_dir(root)
    if folder is None and download:
        try:
            import torchvision
            torchvision.datasets.CIFAR10(str(root), train=True, download=True)
        except Exception as e:  # noqa: BLE001
            raise UserError(f"could not download CIFAR-10 into {root}: {e}") from None
        folder = find_cifar_dir(root)
    if folder is None:
        if data_dir and not root.exists():
            why = "does not exist"
        elif data_dir and not root.is_dir():
            why = "is not a directory"
        else:
            why = f"has no {CIFAR_DIRNAME} (data_batch_* and test_batch)"
        raise UserError(f"CIFAR-10 data dir {root} {why}; point --data-dir at a "
                        f"{CIFAR_DIRNAME} folder or add --download")
    xs, ys = zip(*[_read_batch(p) for p in sorted(folder.glob("data_batch_*"))], strict=False)
    xt, yt = _read_batch(folder / "test_batch")
    train = Split(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)))
    test = Split(torch.from_numpy(xt), torch.from_numpy(yt))
    if input_size != 32:
        train.images, test.images = _resize(train.images, input_size), _resize(test.images,
                                                                               input_size)
    return Dataset("cifar10", train, test, 10, 3, input_size, CIFAR_MEAN, CIFAR_STD,
                   str(folder))


def _stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def load_digits(input_size: int = 32) -> Dataset:
    """Returns scikit-learn's 8x8 digits resized to ``input_size``, 3 channels."""
    from sklearn.datasets import load_digits as sk_digits
    d = sk_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = _resize(x, input_size).repeat(1, 3, 1, 1).contiguous()
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    test_idx, train_idx = perm[:300], perm[300:]
    train, test = Split(x[train_idx], y[train_idx]), Split(x[test_idx], y[test_idx])
    mean, std = _stats(train.images)
    return Dataset("digits", train, test, 10, 3, input_size, mean, std,
                   "sklearn.datasets.load_digits (bundled)", augment="crop")


def load_synthetic(input_size: int = 32, n_train: int = 512, n_test: int = 128,
                   num_classes: int = 10) -> Dataset:
    """Returns random class-dependent patterns plus noise (for speed tests only)."""
    g = torch.Generator().manual_seed(1234)
    protos = torch.rand(num_classes, 3, input_size, input_size, generator=g)

    def make(n):
        y = torch.randint(0, num_classes, (n,), generator=g)
        x = (0.6 * protos[y] + 0.4 * torch.rand(n, 3, input_size, input_size, generator=g))
        return Split(x.clamp(0, 1), y)

    train, test = make(n_train), make(n_test)
    mean, std = _stats(train.images)
    return Dataset("synthetic", train, test, num_classes, 3, input_size, mean, std,
                   "synthetic (random patterns)", augment="crop+flip+cutout")


#: the image suffixes a folder data set reads (PIL's common formats)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                  ".ppm", ".pgm")
#: the share of a folder data set held out as its test split when it has no test folder
FOLDER_TEST_PORTION = 0.2


def _image_folder(root: Path, input_size: int, classes: list[str] | None = None):
    """Returns (uint8 images [N, 3, s, s], labels, class names) of a folder of class
    folders, read with torchvision's ImageFolder and resized to ``input_size``."""
    from torchvision import datasets, transforms
    tf = transforms.Compose([transforms.Resize((input_size, input_size)),
                             transforms.PILToTensor()])
    try:
        ds = datasets.ImageFolder(str(root), transform=tf,
                                  loader=lambda p: datasets.folder.default_loader(p)
                                  .convert("RGB"),
                                  is_valid_file=lambda p: p.lower().endswith(IMAGE_SUFFIXES))
    except (FileNotFoundError, OSError) as e:
        raise UserError(f"--data-dir {root}: {e}") from None
    if classes is not None and ds.classes != classes:
        raise UserError(f"{root}: its class folders ({', '.join(ds.classes)}) differ from "
                        f"the training folder's ({', '.join(classes)})")
    xs, ys = [], []
    for i in range(len(ds)):
        try:
            x, y = ds[i]
        except Exception as e:  # noqa: BLE001 - a broken image: one line naming it
            raise UserError(f"cannot read image {ds.samples[i][0]}: "
                            f"{e.__class__.__name__}: {e}") from None
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64), ds.classes


def load_folder(data_dir: str | Path | None, input_size: int = 32) -> Dataset:
    """Returns a user's images: a folder of class folders (torchvision's ImageFolder:
    ``DIR/<class>/<image>``), or one with ``train/`` and ``test/`` (or ``val/``)
    folders of class folders. Images are read as RGB and resized to ``input_size``
    (bilinear); without a test folder, a stratified :data:`FOLDER_TEST_PORTION` of each
    class (seeded, fixed) is the test split. Normalised by the training split's
    statistics."""
    if not data_dir:
        raise UserError("--dataset folder reads your images: give --data-dir DIR (a "
                        "folder of class folders)")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"--data-dir {root} is not a folder of class folders")
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        x, y, classes = _image_folder(root / "train", input_size)
        xt, yt, _ = _image_folder(test_dir, input_size, classes)
        train, test = Split(x, y), Split(xt, yt)
        how = f"{root / 'train'} / {test_dir}"
    else:
        x, y, classes = _image_folder(root, input_size)
        g = torch.Generator().manual_seed(0)
        test_idx = []
        for c in range(len(classes)):
            idx = torch.nonzero(y == c).flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            test_idx.append(idx[:int(round(FOLDER_TEST_PORTION * len(idx)))])
        mask = torch.zeros(len(y), dtype=torch.bool)
        mask[torch.cat(test_idx)] = True
        train, test = Split(x[~mask], y[~mask]), Split(x[mask], y[mask])
        how = f"{root} ({100 * FOLDER_TEST_PORTION:.0f} % of each class held out as test)"
    if len(classes) < 2 or len(train) < 2 or len(test) < 1:
        raise UserError(f"--data-dir {root}: {len(classes)} class folder(s), "
                        f"{len(train)} training and {len(test)} test images; a data set "
                        f"needs 2 classes or more and images in both splits")
    mean, std = _stats(train.images)
    return Dataset("folder", train, test, len(classes), 3, input_size, mean, std,
                   f"image folder {how}, {len(classes)} classes, resized to "
                   f"{input_size}x{input_size}")


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False,
                 input_size: int = 32) -> Dataset:
    """Returns the named data set (cifar10, digits, synthetic or folder) at
    ``input_size``."""
    if name == "cifar10":
        return load_cifar10(data_dir, download, input_size)
    if name == "folder":
        return load_folder(data_dir, input_size)
    if name == "digits":
        return load_digits(input_size)
    if name == "synthetic":
        return load_synthetic(input_size)
    raise UserError(f"unknown dataset {name!r} (use cifar10, digits, synthetic or folder)")


class TensorLoader:
    """Batches of a :class:`Split`, shuffled and augmented from its own generator.

    Yields ``(images float32 normalised [B, C, H, W], labels [B])``. An epoch is at most
    ``max_steps`` batches. ``state_dict``/``load_state_dict`` capture the generator, the
    epoch's permutation and the position, so iteration resumes exactly."""

    def __init__(self, split: Split, batch_size: int, *, mean, std, shuffle: bool = True,
                 augment: bool | str = False, cutout: int = 0, seed: int = 0,
                 max_steps: int | None = None, drop_last: bool = False,
                 channels_last: bool = False):
        if len(split) == 0:
            raise UserError("a data split is empty; use more data or a smaller portion")
        self.split, self.batch_size = split, batch_size
        self.shuffle, self.augment, self.cutout = shuffle, augment, cutout
        # augment: False, True (CIFAR's crop+flip+cutout) or a policy "crop+flip+cutout"
        policy = "crop+flip+cutout" if augment is True else str(augment or "")
        parts = set(policy.split("+"))
        self.crop, self.flip, self.use_cutout = ("crop" in parts, "flip" in parts,
                                                 "cutout" in parts)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.generator = torch.Generator().manual_seed(seed)
        self.max_steps, self.drop_last = max_steps, drop_last
        self.channels_last = channels_last
        self._perm: torch.Tensor | None = None
        self._cursor = 0

    def __len__(self) -> int:
        n = len(self.split)
        full = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        full = max(full, 1)
        return min(full, self.max_steps) if self.max_steps else full

    def __iter__(self):
        if self._perm is None or self._cursor >= len(self):
            n = len(self.split)
            self._perm = (torch.randperm(n, generator=self.generator) if self.shuffle
                          else torch.arange(n))
            self._cursor = 0
        while self._cursor < len(self):
            i = self._cursor
            idx = self._perm[i * self.batch_size:(i + 1) * self.batch_size]
            batch = self._make(idx)
            self._cursor += 1
            yield batch

    def _make(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.split.images[idx]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.clone()
        y = self.split.labels[idx]
        b, _, h, w = x.shape
        if self.crop:
            pad = max(1, h // 8)
            xp = F.pad(x, (pad, pad, pad, pad))
            off = torch.randint(0, 2 * pad + 1, (b, 2), generator=self.generator)
            flip = torch.rand(b, generator=self.generator) < 0.5
            for k in range(b):
                oy, ox = int(off[k, 0]), int(off[k, 1])
                crop = xp[k, :, oy:oy + h, ox:ox + w]
                x[k] = crop.flip(-1) if flip[k] and self.flip else crop
        x = (x - self.mean) / self.std
        if self.cutout > 0 and self.use_cutout:
            cy = torch.randint(0, h, (b,), generator=self.generator)
            cx = torch.randint(0, w, (b,), generator=self.generator)
            half = self.cutout // 2
            for k in range(b):
                y0, y1 = max(0, int(cy[k]) - half), min(h, int(cy[k]) + half)
                x0, x1 = max(0, int(cx[k]) - half), min(w, int(cx[k]) + half)
                x[k, :, y0:y1, x0:x1] = 0.0
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def state_dict(self) -> dict:
        """Returns the loader's position and random state."""
        return {"generator": self.generator.get_state(), "perm": self._perm,
                "cursor": self._cursor}

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict`."""
        self.generator.set_state(state["generator"])
        self._perm = state["perm"]
        self._cursor = int(state["cursor"])
