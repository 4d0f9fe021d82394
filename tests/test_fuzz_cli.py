"""The command line fed malformed files (hypothesis): exit status 0, or 2 with one
'hgmntk: error:' line; never an internal error (status 1) or a traceback."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hgmntk.cli import main

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e999", "1e-400", "x", '"1"', "1;2",
                     "0x1f", "1,", "\t3", "1e", "--1", "٣"]),
)
ROWS = st.lists(st.lists(CELLS, min_size=1, max_size=4), min_size=0, max_size=6)


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _check(code: int, err: str) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("hgmntk: error: ")


@settings(max_examples=120)
@given(ROWS, st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_kernel_on_malformed_csv(rows, newline, header):
    text = newline.join(",".join(r) for r in rows)
    if header:
        text = "a,b,c" + newline + text
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        path.write_text(text, encoding="utf-8")
        code, err = _run(["kernel", "--x1", str(path), "--activation", "relu", "--depth", "2",
                          "--out", str(Path(tmp) / "k.npz")])
        _check(code, err)
        assert (Path(tmp) / "k.npz").exists() == (code == 0)


@settings(max_examples=60)
@given(st.binary(max_size=200))
def test_kernel_on_binary_garbage(data):
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("x.csv", "x.npy"):
            path = Path(tmp) / name
            path.write_bytes(data)
            code, err = _run(["kernel", "--x1", str(path), "--activation", "relu", "--depth",
                              "1", "--out", str(Path(tmp) / "k.npz")])
            _check(code, err)
