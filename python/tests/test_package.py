"""The package itself: the append script it ships is the gateway's, byte for
byte; its registry files are what the generator makes of src/events/registry.ts;
and `pip install ./python` works offline in a venv over the system's redis."""
from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

from conftest import BUN, ROOT

PACKAGE = ROOT / "python" / "src" / "taskstream"


def test_the_shipped_scripts_are_the_gateways():
    for script in ("append.lua", "task_index.lua"):
        assert (PACKAGE / script).read_bytes() == (ROOT / "src" / "log" / script).read_bytes(), script


def test_the_registry_files_are_generated_from_the_gateways_registry():
    check = subprocess.run([str(BUN), "scripts/python-registry.ts", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_pip_installs_the_package_offline_into_a_venv(tmp_path: Path):
    venv.create(tmp_path / "venv", system_site_packages=True, with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-index", str(ROOT / "python")],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    probe = (
        "import taskstream, pathlib; p = pathlib.Path(taskstream.__file__).parent; "
        "print(p); print(sorted(x.name for x in p.iterdir() if x.suffix in ('.lua', '.json')))"
    )
    result = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    location, files = result.stdout.splitlines()
    assert location.startswith(str(tmp_path)), "imported from the venv, not the source tree"
    assert files == "['append.lua', 'registry.json', 'task_index.lua']"
    assert sys.version_info >= (3, 10)
