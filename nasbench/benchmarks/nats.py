"""NATS-Bench's topology archive (the 200-epoch NAS-Bench-201 results) through the
``nats_bench`` package (``pip install nasbench[nats]``), for users who have the archive
(``NATS-tss-v1_0-3ffb9-simple``; nothing is downloaded here).

:func:`nats_table` reads, for every cell, the 200-epoch accuracies NAS papers report:
CIFAR-10 validation (trained on the train half, ``cifar10-valid``) and test (trained on
train + valid, ``cifar10``), CIFAR-100 and ImageNet16-120 validation and test. Reading
15,625 cells through the API takes minutes, so the table is cached as a CSV in the user
cache, keyed by the archive's path and modification time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from nasbench.errors import UserError
from profilers.lut import atomic_write_text

#: our column -> (NATS-Bench data set name, key of get_more_info)
COLUMNS = {"cifar10-val": ("cifar10-valid", "valid-accuracy"),
           "cifar10-test": ("cifar10", "test-accuracy"),
           "cifar100-val": ("cifar100", "valid-accuracy"),
           "cifar100-test": ("cifar100", "test-accuracy"),
           "ImageNet16-120-val": ("ImageNet16-120", "valid-accuracy"),
           "ImageNet16-120-test": ("ImageNet16-120", "test-accuracy")}


def nats_table(archive: str | Path, cells: int = 15_625, progress=None) -> pd.DataFrame:
    """Returns the 200-epoch accuracy table (%; index = NAS-Bench-201 index, columns
    ``arch`` and :data:`COLUMNS`) of a NATS-Bench topology archive; raises UserError when
    the archive or the ``nats_bench`` package is missing."""
    from nasbench.luts import cache_dir
    archive = Path(archive).expanduser()
    if not archive.exists():
        raise UserError(f"NATS-Bench archive not found: {archive} (the topology archive "
                        f"NATS-tss-v1_0-3ffb9-simple, from github.com/D-X-Y/NATS-Bench)")
    st = archive.stat()
    h = hashlib.sha256(f"{archive.resolve()}|{st.st_mtime_ns}|{cells}".encode())
    cached = cache_dir() / "nats" / f"nats-tss-200-{h.hexdigest()[:12]}.csv"
    if cached.is_file():
        return pd.read_csv(cached).set_index("index")
    try:
        from nats_bench import create
    except ImportError:
        raise UserError("reading a NATS-Bench archive needs the nats_bench package: pip "
                        "install 'nasbench[nats]'") from None
    try:
        api = create(str(archive), "tss", fast_mode=True, verbose=False)
    except Exception as e:  # noqa: BLE001 - a foreign API: any failure is the file's
        raise UserError(f"NATS-Bench archive {archive} could not be opened: {e}") from None
    rows = []
    for i in range(cells):
        row = {"index": i, "arch": api.arch(i)}
        infos: dict = {}
        for col, (ds, key) in COLUMNS.items():
            if ds not in infos:
                infos[ds] = api.get_more_info(i, ds, hp="200", is_random=False)
            row[col] = float(infos[ds][key])
        rows.append(row)
        if progress is not None:
            progress(i + 1, cells)
    df = pd.DataFrame(rows)
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cached, df.to_csv(index=False))
    return df.set_index("index")
