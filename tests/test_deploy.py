"""`up` / `preview` / `destroy`: the gate first, Pulumi only after it passed, clear words when Pulumi is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hardstack.errors import EXIT_INVALID, EXIT_TOOL, EXIT_VIOLATIONS

REPO = Path(__file__).resolve().parent.parent
HARDSTACK = Path(sys.executable).parent / "hardstack"
FIXTURES = REPO / "tests" / "fixtures"


def run(*args: str, path: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    return subprocess.run([str(HARDSTACK), *args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd)


def fake_pulumi(tmp_path: Path) -> tuple[str, Path]:
    """A `pulumi` that only records that it was called (and then fails, as no engine exists here)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "pulumi-calls.log"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\necho 'no engine here' >&2\nexit 1\n")
    script.chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin", log


def test_without_the_pulumi_cli_up_says_how_to_install_it() -> None:
    proc = run("up", "llm-inference", path="/usr/bin:/bin")
    assert proc.returncode == EXIT_TOOL
    assert "Pulumi CLI is not installed" in proc.stderr and "install it" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_up_never_runs_pulumi_after_a_failed_gate(tmp_path: Path) -> None:
    path, log = fake_pulumi(tmp_path)
    proc = run("up", str(FIXTURES / "insecure-project"), path=path)
    assert proc.returncode == EXIT_VIOLATIONS, proc.stderr
    assert "did not run: the gate failed" in proc.stderr and "FAIL" in proc.stdout
    assert not log.exists(), log.read_text()


def test_preview_never_runs_pulumi_after_a_failed_gate(tmp_path: Path) -> None:
    path, log = fake_pulumi(tmp_path)
    proc = run("preview", str(FIXTURES / "insecure-project"), path=path)
    assert proc.returncode == EXIT_VIOLATIONS and not log.exists()


def test_after_a_passed_gate_pulumi_is_driven_and_its_failure_reported(tmp_path: Path) -> None:
    path, log = fake_pulumi(tmp_path)
    proc = run("preview", "llm-inference", path=path, cwd=tmp_path)
    assert log.exists() and log.read_text().strip(), "pulumi was not called after the gate passed"
    assert proc.returncode == EXIT_TOOL, proc.stderr
    assert "the gate passed on inventory sha256:" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / ".hardstack" / "pulumi" / "llm-inference").is_dir()  # Pulumi's settings in hardstack's folder


def test_destroy_asks_for_confirmation(tmp_path: Path) -> None:
    path, log = fake_pulumi(tmp_path)
    proc = run("destroy", str(FIXTURES / "user-project"), path=path)
    assert proc.returncode == EXIT_INVALID and "--yes" in proc.stderr and not log.exists()
