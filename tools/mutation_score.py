"""Print the mutation score per core module from mutmut's results in ``mutants/``.

Run by ``make mutation`` after ``mutmut run``. The score is killed / total: a mutant that
survived, timed out, had no covering test or was suspicious counts against it. Exits 1 when
the overall score is under ``--target`` percent (default 85).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py), folded into the columns shown here
KILLED = {1, 3}
SURVIVED = {0}
TIMEOUT = {24, -24, 36, 152, 255}
NO_TESTS = {5, 33}
COLUMNS = ("killed", "survived", "timeout", "no tests", "other", "total")


def classify(exit_code: int | None) -> str:
    if exit_code in KILLED:
        return "killed"
    if exit_code in SURVIVED:
        return "survived"
    if exit_code in TIMEOUT:
        return "timeout"
    if exit_code in NO_TESTS:
        return "no tests"
    return "other"


def mutated_paths(root: Path) -> list[str]:
    """The files listed in ``[tool.mutmut] only_mutate``."""
    config = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]
    return list(config["only_mutate"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path())
    parser.add_argument("--target", type=float, default=85.0)
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    args = parser.parse_args(argv)

    rows: list[tuple[str, dict[str, int]]] = []
    survivors: list[str] = []
    for path in mutated_paths(args.root):
        meta = args.root / "mutants" / (path + ".meta")
        if not meta.exists():
            print(f"{path}: no results (run `make mutation` first)", file=sys.stderr)
            continue
        codes: dict[str, int | None] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
        counts = dict.fromkeys(COLUMNS, 0)
        for name, code in sorted(codes.items()):
            status = classify(code)
            counts[status] += 1
            counts["total"] += 1
            if status != "killed":
                survivors.append(f"{status:9} {name}")
        rows.append((Path(path).name, counts))
    if not rows:
        return 2

    total = {c: sum(r[c] for _, r in rows) for c in COLUMNS}
    width = max(len(name) for name, _ in [*rows, ("total", total)])
    print(f"{'module':<{width}}  " + "  ".join(f"{c:>8}" for c in COLUMNS) + "     score")
    for name, r in [*rows, ("total", total)]:
        score = 100 * r["killed"] / r["total"] if r["total"] else 100.0
        cells = "  ".join(f"{r[c]:>8}" for c in COLUMNS)
        print(f"{name:<{width}}  {cells}  {score:7.1f} %")
    if args.survivors:
        print("\n".join(["", *survivors]))
    overall = 100 * total["killed"] / total["total"] if total["total"] else 100.0
    if overall < args.target:
        print(f"mutation score {overall:.1f} % is under the target {args.target:.0f} %")
        return 1
    print(f"mutation score {overall:.1f} % (target {args.target:.0f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
