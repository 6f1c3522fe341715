"""Time of the commands that describe things, each a new process as a user runs it.

    python benchmarks/cold_commands.py artifacts/digits-image
    python benchmarks/cold_commands.py artifacts/digits-image --runs 5 --alice "python -m alice"

Runs `alice --help`, `alice plugins list`, `alice reference show PATH` and `alice index list PATH`
``--runs`` times each, interleaved, and prints the wall time and the CPU time (user + system, of
the process and its children) of each run, with `uptime` before every round. On a busy machine the
CPU time says more than the wall time: it is what the command itself costs.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import time


def run(command: list[str]) -> tuple[float, float]:
    before = os.times()
    t0 = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-500:]}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--alice", default=".venv/bin/alice", help="How to start alice (default: .venv/bin/alice).")
    args = p.parse_args()
    alice = shlex.split(args.alice)
    commands = {
        "--help": ["--help"],
        "plugins list": ["plugins", "list"],
        "reference show": ["reference", "show", args.reference],
        "index list": ["index", "list", args.reference],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for i in range(args.runs):
        print(f"round {i + 1}: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
        for name, words in commands.items():
            times[name].append(run([*alice, *words]))
    print(f"{'command':<16} {'wall s (each run)':<26} {'CPU s (each run)':<26}")
    for name, runs in times.items():
        wall = " ".join(f"{w:.2f}" for w, _ in runs)
        cpu = " ".join(f"{c:.2f}" for _, c in runs)
        print(f"{name:<16} {wall:<26} {cpu:<26}")


if __name__ == "__main__":
    main()
