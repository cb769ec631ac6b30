"""keys/ and ledger/ never import gateway/ (DESIGN.md, package boundaries).

Each check runs in a fresh interpreter, so modules loaded by other tests cannot hide an
import.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> list[str]:
    found = [package]
    for info in pkgutil.walk_packages([str(ROOT / package)], prefix=package + "."):
        found.append(info.name)
    return found


@pytest.mark.parametrize("package", ["keys", "ledger"])
def test_package_never_loads_gateway(package: str) -> None:
    modules = _modules(package)
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'gateway' or m.startswith('gateway.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"{package} loaded {out.stdout.strip()}"


def test_ledger_does_not_load_keys() -> None:
    """An auditor needs only ledger/: it stands on pynacl, asn1crypto and sqlite-utils."""
    modules = _modules("ledger")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(sorted(m for m in sys.modules if m == 'keys' or m.startswith('keys.'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
