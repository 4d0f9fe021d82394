"""The reference values ship with the tests: no test depends on a folder outside the checkout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import conftest
from tests.conftest import REFERENCE_DIR, ROOT, reference_dir

TESTS = Path(__file__).resolve().parent


def test_reference_files_are_in_the_checkout():
    assert REFERENCE_DIR.parent == TESTS
    for name in ("duals.json", "kernels.json", "README.md"):
        assert (REFERENCE_DIR / name).is_file(), name
    assert REFERENCE_DIR.resolve().is_relative_to(ROOT)
    duals = json.loads((REFERENCE_DIR / "duals.json").read_text())
    assert len(duals) == 1840
    assert {"activation", "a", "b", "c", "E_ss", "E_dsds", "digits_ss"} <= set(duals[0])


def test_reference_dir_defaults_to_tests_reference(monkeypatch):
    monkeypatch.delenv("HGMNTK_REFERENCE_DIR", raising=False)
    assert reference_dir() == REFERENCE_DIR


def test_reference_dir_override(monkeypatch, tmp_path):
    (tmp_path / "duals.json").write_text("[]")
    monkeypatch.setenv("HGMNTK_REFERENCE_DIR", str(tmp_path))
    assert reference_dir() == tmp_path
    monkeypatch.setenv("HGMNTK_REFERENCE_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="HGMNTK_REFERENCE_DIR"):
        reference_dir()


def test_no_test_reaches_outside_the_checkout_or_skips_for_reference_data():
    """No test source names the old shared folder or skips when reference data is absent."""
    for path in sorted(TESTS.glob("*.py")):
        if path.name == Path(__file__).name:
            continue
        text = path.read_text(encoding="utf-8")
        assert "shared/reference" not in text, path.name
        assert "reference values not available" not in text, path.name
    assert not hasattr(conftest, "need_reference")
