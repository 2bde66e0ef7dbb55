"""hardstack installs as a wheel into a clean environment and works from there, as from the editable checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import hardstack.blueprints

REPO = Path(__file__).resolve().parent.parent


def uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(REPO / ".tools" / "bin"))
    assert found, "uv is installed by `make setup`; it is missing"
    return found


def test_editable_install_maps_top_level_folders() -> None:
    assert Path(hardstack.blueprints.__file__).parent == REPO / "blueprints"


def test_wheel_in_a_clean_environment(tmp_path: Path) -> None:
    wheel_dir, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    subprocess.run([uv(), "build", "--wheel", "-q", "-o", str(wheel_dir)], cwd=REPO, check=True, timeout=300)
    (wheel,) = wheel_dir.glob("hardstack-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hardstack/blueprints/catalog/llm-inference.yaml" in names
    checks = {f"hardstack/policies/checks/{p.name}" for p in (REPO / "policies" / "checks").glob("*.[py][ya]*")}
    assert len(checks) > 30 and checks <= set(names), checks - set(names)  # Python and graph checks
    templates = {f"hardstack/stacks/templates/project/{p.name}" for p in (REPO / "stacks/templates/project").iterdir()}
    templates |= {f"hardstack/stacks/templates/runbook/{p.name}" for p in (REPO / "stacks/templates/runbook").iterdir()}
    templates |= {f"hardstack/policies/templates/{p.name}" for p in (REPO / "policies/templates").iterdir()}
    assert templates <= set(names), templates - set(names)
    for package in ("blueprints", "modules", "stacks", "policies", "cli"):
        assert f"hardstack/{package}/__init__.py" in names
    assert not any(n.startswith(("tests/", "bench/", "examples/")) for n in names)

    requirements = tmp_path / "requirements.txt"
    subprocess.run(
        [uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "-q", "-o", str(requirements)],
        cwd=REPO, check=True, timeout=120,
    )
    # --no-config: not this repo's settings; the environment holds the locked dependencies and the wheel only
    subprocess.run([uv(), "venv", "-q", "--no-config", "--python", sys.executable, str(venv)], cwd=work,
                   check=True, timeout=120)
    subprocess.run(
        [uv(), "pip", "install", "-q", "--no-config", "--python", str(venv / "bin" / "python"), "--no-deps",
         "-r", str(requirements), str(wheel)],
        cwd=work, check=True, timeout=600,
    )
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import hardstack.stacks, hardstack.modules; print(hardstack.stacks.__file__)"],
        cwd=work, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert where.startswith(str(venv)), where
    proc = subprocess.run(
        [str(venv / "bin" / "hardstack"), "check", "llm-inference", "--out-dir", "out"],
        cwd=work, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((work / "out" / "inventory.json").read_text())["resources"]
