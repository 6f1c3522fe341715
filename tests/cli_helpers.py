"""The CLI run in-process, as a user runs it, for tests that check what it prints and its exit status."""

from __future__ import annotations

import sys


def run(capsys, *args) -> tuple[int, str, str]:
    from alice.cli import main

    old = sys.argv
    sys.argv = ["alice", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, needle: str, *args) -> None:
    code, out, err = run(capsys, *args)
    assert code != 0, f"exit 0 for {args}: {err}"
    assert "Traceback" not in err and "Traceback" not in out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert needle in errors[0], errors[0]
