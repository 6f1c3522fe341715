"""The one way tests run the ``alice`` command line, as a user runs it.

``alice(*args)`` runs the real entry point (``alice.cli.main``) in this
process and returns what it printed and its exit status: fast, since torch and
the plugins are loaded once per session. ``alice(*args, fresh=True)`` runs
``python -m alice`` in a new process instead, for what only a new process
shows: plugins found through entry points under another ``ALICE_PLUGINS``,
what importing costs, a process killed midway. ``env`` and ``cwd`` apply to
both (in this process they are set for the call and restored after).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple


class Result(NamedTuple):
    code: int
    out: str
    err: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


@contextlib.contextmanager
def _environment(env: dict[str, str] | None, cwd: Path | None):
    old_env, old_cwd = dict(os.environ), os.getcwd()
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old_env)
        os.chdir(old_cwd)


def alice(
    *args, env: dict[str, str] | None = None, cwd: Path | None = None, fresh: bool = False, timeout: int = 600
) -> Result:
    words = [str(a) for a in args]
    if fresh:
        done = subprocess.run(
            [sys.executable, "-m", "alice", *words], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
        )
        return Result(done.returncode, done.stdout, done.stderr)
    from alice.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["alice", *words]
    code = 0
    try:
        with _environment(env, cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
    return Result(code, out.getvalue(), err.getvalue())


def ok(*args, **kwargs) -> Result:
    """Run a command that must succeed; on failure, show what it printed."""
    r = alice(*args, **kwargs)
    assert r.code == 0, f"alice {' '.join(map(str, args))} exited {r.code}:\n{r.err[-3000:]}"
    return r


def refused(needle: str, *args, **kwargs) -> Result:
    """Run a command that must fail with exactly one ``error:`` line containing ``needle`` and no traceback."""
    r = alice(*args, **kwargs)
    assert r.code != 0, f"exit 0 for {args}: {r.err}"
    assert "Traceback" not in r.err and "Traceback" not in r.out, r.err
    assert len(r.errors) == 1, r.err
    assert needle in r.errors[0], r.errors[0]
    return r
