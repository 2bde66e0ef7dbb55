"""Benchmarks: `hardstack check` against stock checkov on the same files, and growth with stack size.

    make bench            # or: .venv/bin/python bench/run.py [--repeat N] [--sizes 10,50,100]

For each shipped blueprint: the out-dir is written once by `hardstack synth`; then, alternating, the whole
`hardstack check BLUEPRINT` (synthesis + gate, from a cold process) and the checkov CLI alone on that out-dir
with hardstack's external checks. Reported: median wall time of each, their ratio, peak memory (RSS of the
process and its children) and the resource count. Target: ratio <= 1.3 (aim 1.0).

Wall times on a shared 2-core machine vary by ±20% between runs: the median and the best-of-N ratio are both
reported.

Scale: the `multi-tenant-gpu` blueprint grown to N tenants (each with its namespace, policies, quota, roles and
a data set bucket) and 2N/5 dedicated GPU pools (50 tenants: 20 pools); time and peak memory against resource
count. Target: growth no worse than linear, peak memory under 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB of the process tree, exit code) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def checkov_cmd(out_dir: Path, checks_dir: str) -> list[str]:
    return [str(BIN / "checkov"), "-d", str(out_dir), "--framework", "terraform_plan", "kubernetes",
            "--skip-download", "--quiet", "--compact", "-o", "json", "--external-checks-dir", checks_dir]


def compare(target: str, work: Path, repeat: int, checks_dir: str) -> dict[str, object]:
    out = work / f"out-{Path(target).stem}"
    subprocess.run([str(BIN / "hardstack"), "synth", target, "--out-dir", str(out)], check=True, env=ENV,
                   capture_output=True)
    resources = len(json.loads((out / "inventory.json").read_text())["resources"])
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(measure([str(BIN / "hardstack"), "check", target], work))
        theirs.append(measure(checkov_cmd(out, checks_dir), work))
    codes = {r[2] for r in ours}
    t_ours = statistics.median(r[0] for r in ours)
    t_theirs = statistics.median(r[0] for r in theirs)
    best_ours, best_theirs = min(r[0] for r in ours), min(r[0] for r in theirs)
    return {
        "target": target,
        "resources": resources,
        "hardstack_s": round(t_ours, 2),
        "checkov_s": round(t_theirs, 2),
        "ratio": round(t_ours / t_theirs, 2),
        "best_ratio": round(best_ours / best_theirs, 2),
        "hardstack_peak_mib": round(max(r[1] for r in ours)),
        "checkov_peak_mib": round(max(r[1] for r in theirs)),
        "exit_codes": sorted(codes),
    }


def scaled_blueprint(work: Path, tenants: int) -> Path:
    data = yaml.safe_load((REPO / "blueprints" / "catalog" / "multi-tenant-gpu.yaml").read_text())
    data["name"] = f"scale-{tenants}"
    names = [f"team-{i:03d}" for i in range(tenants)]
    data["data"]["buckets"] += [{"name": f"{n}-data", "purpose": "training-data"} for n in names]
    data["compute"]["tenants"] += [{"name": n, "gpus": 2} for n in names]
    data["compute"]["gpu_pools"] += [
        {"name": f"{n}-gpus", "tenants": [n], "instance_types": ["g6.2xlarge"]} for n in names[: tenants * 2 // 5]
    ]
    path = work / f"scale-{tenants}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="0,10,25,50", help="added tenant counts for the scale runs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    checks_dir = subprocess.run([str(BIN / "hardstack"), "checks-dir"], capture_output=True, text=True,
                                check=True).stdout.strip()
    sys.path.insert(0, str(REPO))
    from hardstack.blueprints.loader import catalog

    results: dict[str, object] = {"machine": f"{os.cpu_count()} cores", "compare": [], "scale": []}
    with tempfile.TemporaryDirectory(prefix="hardstack-bench-") as tmp:
        work = Path(tmp)
        print(f"{'target':<22} {'resources':>9} {'hardstack s':>12} {'checkov s':>10} {'ratio':>6} "
              f"{'best':>5} {'peak MiB (hs/ckv)':>18}")
        for name in catalog():
            row = compare(name, work, args.repeat, checks_dir)
            results["compare"].append(row)  # type: ignore[union-attr]
            print(f"{name:<22} {row['resources']:>9} {row['hardstack_s']:>12} {row['checkov_s']:>10} "
                  f"{row['ratio']:>6} {row['best_ratio']:>5} {row['hardstack_peak_mib']:>9}/{row['checkov_peak_mib']}")
        print()
        print(f"{'scale':<22} {'resources':>9} {'hardstack s':>12} {'checkov s':>10} {'ratio':>6} "
              f"{'best':>5} {'peak MiB (hs/ckv)':>18} {'ms/resource':>12}")
        for tenants in (int(s) for s in args.sizes.split(",")):
            row = compare(str(scaled_blueprint(work, tenants)), work, max(1, args.repeat - 1), checks_dir)
            row["tenants"] = tenants
            row["ms_per_resource"] = round(1000 * row["hardstack_s"] / row["resources"], 1)  # type: ignore[operator]
            results["scale"].append(row)  # type: ignore[union-attr]
            print(f"{tenants:>3} tenants{'':<12} {row['resources']:>9} {row['hardstack_s']:>12} "
                  f"{row['checkov_s']:>10} {row['ratio']:>6} {row['best_ratio']:>5} {row['hardstack_peak_mib']:>9}/"
                  f"{row['checkov_peak_mib']} {row['ms_per_resource']:>12}")
    scale = results["scale"]
    if len(scale) >= 2:  # type: ignore[arg-type]
        small, large = scale[0], scale[-1]  # type: ignore[index]
        marginal = (large["hardstack_s"] - small["hardstack_s"]) / (large["resources"] - small["resources"])
        print(f"\nmarginal cost {1000 * marginal:.1f} ms/resource; time grows x{large['hardstack_s'] / small['hardstack_s']:.2f} "
              f"for x{large['resources'] / small['resources']:.2f} resources; "
              f"peak memory {max(r['hardstack_peak_mib'] for r in scale)} MiB (limit 1024)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
