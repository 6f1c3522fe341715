"""Every row of docs/reliability.md's catalogue of bad inputs, run as written there.

The table is read from the doc: each row's command (its third column) runs in a
fresh folder holding ``ref`` (a copy of the tiny reference) and what that row's
case below puts beside it; it must print the row's line (``…`` stands for a
path, hash or number that varies) and no traceback, with one ``error:`` line
and a non-zero exit (a ``warning:`` row exits 0; a row whose line is neither is
read from the output of a command that succeeds, as ``alice plugins list``).
``test_every_row_has_a_case`` keeps the doc and these cases together.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from cli_helpers import (
    EchoBackbone,
    Result,
    TroubledPlugin,
    alice,
    ctrl_c_heard,
    ok,
    tampered_copy,
    tar_archive,
    tar_file,
    tar_link,
)

from alice.plugin import hookimpl
from alice.plugin import manager as plugins

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
pytestmark = pytest.mark.usefixtures("recipe_dir")


def catalogue() -> dict[int, tuple[str, str, str]]:
    """Row number -> (input, command, line), from the doc's table."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## The catalogue of bad inputs") :]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0].isdigit():
            unquote = [c.replace("\\|", "|") for c in cells]
            rows[int(cells[0])] = (unquote[1], _code(unquote[2]), _code(unquote[3]))
    return rows


def _code(cell: str) -> str:
    """The text of a cell's code span (``` `` a `b` c `` ``` when it holds backticks itself)."""
    if cell.startswith("``"):
        return cell[2 : cell.index("``", 2)].strip()
    return cell[1 : cell.index("`", 1)]


def matches(expected: str, printed: str) -> bool:
    """``expected`` with each ``…`` standing for anything: its pieces appear in ``printed``, in order."""
    pattern = ".*?".join(re.escape(piece) for piece in re.split(r"…", expected))
    return re.search(pattern, printed) is not None


# --------------------------------------------------------------------------- what each row puts beside `ref`


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def rehash(space: Path) -> None:
    """space.json rewritten to match what is there, as anyone with write access could."""
    from alice.artifacts.publish import update_space

    update_space(space, {}, rehash=True)


def thesis(work: Path) -> None:
    write(work / "mydocs" / "thesis.txt", "four years of work\n")


def export(work: Path) -> None:
    ok("reference", "export", work / "ref", "--out", work / "ref.alice.tar.gz")


class EchoPlugin:
    @hookimpl
    def alice_register_backbones(self, registrar):
        registrar.backbone(EchoBackbone)


class RaisingPlugin:
    @hookimpl
    def alice_register_backbones(self, registrar):
        raise RuntimeError("boom")


class WrongKindPlugin:
    @hookimpl
    def alice_register_backbones(self, registrar):
        registrar.backbone(object)


def register(*pairs) -> Callable[[], None]:
    for obj, name in pairs:
        plugins.register_plugin(obj, name)
    return lambda: [plugins.unregister_plugin(name) for _, name in pairs]


def troubled(work: Path):
    write(
        work / "troubled.toml",
        'stage = "reference"\nmodality = "image"\n[data]\ndataset = "troubled"\n[backbone]\nname = "pixels"\n'
        "[model]\nlatent_dim = 8\nencoder_hidden = [16]\nclassifier_hidden = [16]\n"
        '[intervention]\ndesign = "global"\n[training]\nsteps = 5\nbatch_size = 8\n',
    )
    return register((TroubledPlugin(), "troubled-plugin"))


def echo(*names: str):
    def setup(work: Path):
        write(
            work / "echo.toml",
            'stage = "reference"\nmodality = "image"\n[data]\ndataset = "troubled"\n[backbone]\nname = "echo"\n'
            '[model]\nlatent_dim = 8\n[intervention]\ndesign = "global"\n[training]\nsteps = 5\nbatch_size = 8\n',
        )
        return register((TroubledPlugin(), "troubled-plugin"), *((EchoPlugin(), n) for n in names))

    return setup


def damaged_cache(work: Path):
    env = {**os.environ, "ALICE_CACHE_DIR": str(work / "cache")}
    ok("index", "build", work / "ref", "-m", "image", "--out", work / "first.safetensors", env=env)
    shard = next((work / "cache").rglob("shard-*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:50])
    return {"env": env}


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:64])


def other_reference_digest(work: Path) -> None:
    edit_json(
        work / "ref" / "adapters" / "text" / "adapter.json", lambda m: m.__setitem__("reference_digest", "0" * 64)
    )
    rehash(work / "ref")


def broken_distribution(work: Path):
    dist = work / "site" / "alice_broken_plugin-0.1.dist-info"
    write(dist / "METADATA", "Metadata-Version: 2.1\nName: alice-broken-plugin\nVersion: 0.1\n")
    write(dist / "entry_points.txt", "[alice]\nbroken = alice_no_such_module_xyz\n")
    return {"env": {**os.environ, "PYTHONPATH": str(work / "site")}, "fresh": True}


def checkpoint_left(step: int, fingerprint: str = "x"):
    def setup(work: Path) -> None:
        from safetensors.torch import save_file

        folder = work / ".o.checkpoint"
        folder.mkdir()
        write(folder / "checkpoint.json", json.dumps({"step": step, "fingerprint": fingerprint}))
        save_file({"a": torch.zeros(1)}, str(folder / "checkpoint.safetensors"))

    return setup


def crafted(name: str, entries) -> Callable[[Path], None]:
    return lambda work: tar_archive(work / name, entries)


def tampered_archive(work: Path) -> None:
    export(work)
    tampered_copy(work / "ref.alice.tar.gz", work / "bad.tar.gz")


def audio_folder(work: Path) -> None:
    folder = work / "audio"
    write(folder / "ghost.csv", "path,labels\nghost.wav,three\n")
    write(folder / "broken.jsonl", '{"path": "a.wav", "labels": ["three"]}\n{"path": \n')
    write(folder / "noheader.csv", "a.wav,three\n")
    write(folder / "labels.csv", "path,labels\na.wav,three\n")
    write(folder / "junk.csv", "path,labels\njunk.wav,three\n")
    write(folder / "a.wav", b"RIFF")
    write(folder / "junk.wav", b"not audio at all")
    write(
        work / "audio.toml",
        'stage = "modality"\nfamily = "tiny"\nmodality = "audio"\n\n[data]\ndataset = "audio-folder"\n'
        f'root = "{folder}"\n\n[backbone]\nname = "logmel"\n',
    )


def index_file(name: str, reference: str | None = None, adapter: str | None = None, classes: int | None = None):
    def setup(work: Path) -> None:
        from alice.artifacts.loaded import ReferenceSpace
        from alice.search.indexes import write_index

        ref = ReferenceSpace.load(work / "ref")
        meta = {
            "modality": "image",
            "split": "test",
            "reference_sha256": reference or ref.sha256,
            "adapter_sha256": adapter or ref.load_adapter("image").sha256,
        }
        labels = torch.zeros(4, classes or len(ref.vocabulary))
        write_index(work / name, torch.nn.functional.normalize(torch.randn(4, ref.latent_dim), dim=1), meta, labels)

    return setup


def indexed(work: Path) -> None:
    ok("index", "build", work / "ref", "-m", "image")


def foreign_eval(work: Path) -> None:
    write(work / "ref" / "eval.json", json.dumps({"reference": {"sha256": "0" * 64}, "modalities": {}}))
    rehash(work / "ref")


def user_folder_named_ref(work: Path) -> None:
    export(work)
    shutil.rmtree(work / "ref")
    write(work / "ref" / "thesis.txt", "four years of work\n")


def swap_vocabulary(m: dict) -> None:
    v = m["vocabulary"]
    i, j = v.index("three"), v.index("seven")
    v[i], v[j] = v[j], v[i]


def swapped_adapter(work: Path) -> None:
    text = work / "ref" / "adapters" / "text"
    shutil.rmtree(text)
    shutil.copytree(work / "ref" / "adapters" / "image", text)


def symlinked_weights(work: Path) -> None:
    weights = work / "ref" / "adapters" / "text" / "adapter.safetensors"
    shutil.move(weights, work / "elsewhere.safetensors")
    os.symlink(work / "elsewhere.safetensors", weights)


def edited_record(work: Path) -> None:
    edit_json(work / "ref" / "space.json", lambda r: r["files"][0].__setitem__("sha256", "0" * 64))


def renamed_reference(work: Path) -> None:
    edit_json(work / "ref" / "reference.json", lambda m: m.__setitem__("name", "renamed"))


def bomb(work: Path) -> None:
    info = tarfile.TarInfo("ref/reference.safetensors")
    info.size = 1 << 30  # declared; the archive holds none of it
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("ref/reference.json"), io.BytesIO(b""))
        raw.write(info.tobuf(tarfile.GNU_FORMAT))
    import gzip

    write(work / "bomb.tar.gz", gzip.compress(raw.getvalue()))


def sparse(work: Path) -> None:
    folder = work / "sparse" / "ref"
    folder.mkdir(parents=True)
    with open(folder / "reference.safetensors", "wb") as f:
        f.truncate(1 << 30)  # a hole: no block written
    subprocess.run(["tar", "-C", str(work / "sparse"), "-cSzf", str(work / "sparse.tar.gz"), "ref"], check=True)
    shutil.rmtree(work / "sparse")


def zipped(work: Path) -> None:
    import zipfile

    with zipfile.ZipFile(work / "ref.zip", "w") as z:
        z.writestr("ref/reference.json", "{}")


def readonly(work: Path):
    folder = work / "readonly"
    folder.mkdir()
    os.chmod(folder, 0o555)
    if os.geteuid() == 0:  # root writes anywhere a mode forbids; an immutable folder stops it too
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("running as root where chattr +i is not available: no folder is read-only to root")
        return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
    return None


CASES: dict[int, Callable[[Path], object] | None] = {
    1: None,
    2: lambda w: write(w / "r.toml", "stage = \n"),
    3: None,
    4: None,
    5: None,
    6: None,
    7: None,
    8: None,
    9: lambda w: write(w / "r9.toml", 'stage = "reference"\nmodality = "image"\n[data]\ndataset = "digits-image"\n'),
    10: troubled,
    11: troubled,
    12: troubled,
    13: troubled,
    14: troubled,
    15: indexed,
    16: indexed,
    17: None,
    18: None,
    19: damaged_cache,
    20: lambda w: flip_last_byte(w / "ref" / "adapters" / "image" / "adapter.safetensors"),
    21: lambda w: edit_json(w / "ref" / "reference.json", lambda m: m.__setitem__("format_version", 2)),
    22: lambda w: truncate(w / "ref" / "reference.safetensors"),
    23: other_reference_digest,
    24: lambda w: write(w / "ref" / "adapters" / "text" / "model.pt", b"pickle"),
    25: lambda w: (w / "notref").mkdir(),
    26: None,
    27: lambda w: write(w / "ref" / "reference.json", "{not json"),
    28: broken_distribution,
    29: lambda w: register((RaisingPlugin(), "broken-plugin")),
    30: echo("plugin-a", "plugin-b"),
    31: echo("plugin-a"),
    32: lambda w: register((WrongKindPlugin(), "wrong-kind")),
    33: None,
    34: None,
    35: None,
    36: None,
    37: None,
    38: checkpoint_left(10),
    39: checkpoint_left(10),
    40: crafted("a.tar.gz", [tar_file("ref/reference.json"), tar_file("ref/../../evil.json")]),
    41: crafted("link.tar.gz", [tar_file("ref/reference.json"), tar_link("ref/adapters.json", "/etc/passwd")]),
    42: crafted("py.tar.gz", [tar_file("ref/reference.json"), tar_file("ref/run.py", b"print(1)")]),
    43: crafted("tops.tar.gz", [tar_file("a/reference.json"), tar_file("b/reference.json")]),
    44: tampered_archive,
    45: lambda w: write(w / "x.tar.gz", b"hello"),
    46: audio_folder,
    47: audio_folder,
    48: audio_folder,
    49: audio_folder,
    50: audio_folder,
    51: audio_folder,
    52: None,
    53: lambda w: write(w / "bad.safetensors", b"\0" * 100),
    54: index_file("other.safetensors", reference="0" * 64),
    55: index_file("retrained.safetensors", adapter="0" * 64),
    56: index_file("wide.safetensors", classes=40),
    57: indexed,
    58: lambda w: (indexed(w), write(w / "broken.png", b"not a picture")),
    59: None,
    60: lambda w: write(w / "notreport" / "index.html", "<html></html>"),
    61: foreign_eval,
    62: thesis,
    63: thesis,
    64: user_folder_named_ref,
    65: thesis,
    66: thesis,
    67: thesis,
    68: None,
    69: lambda w: edit_json(
        w / "ref" / "adapters" / "text" / "adapter.json", lambda m: m["thresholds"].__setitem__(0, 2.0)
    ),
    70: lambda w: edit_json(w / "ref" / "reference.json", swap_vocabulary),
    71: swapped_adapter,
    72: symlinked_weights,
    73: lambda w: write(w / "ref" / "adapters" / "text" / ".payload.pt", b"x"),
    74: edited_record,
    75: None,
    76: None,
    77: renamed_reference,
    78: bomb,
    79: export,
    80: export,
    81: export,
    82: sparse,
    83: zipped,
    84: lambda w: (export(w), thesis(w)),
    85: crafted("nested.tar.gz", [tar_file("demo/reference.json"), tar_file("demo/reference.json/a/b.json")]),
    86: lambda w: write(w / "latin1.toml", "description = 'caf\xe9'\n".encode("latin-1")),
    87: None,
    88: None,
    89: None,
    90: None,
    91: None,
    92: checkpoint_left(40),
    93: readonly,
    94: thesis,
    95: thesis,
    96: None,
    97: None,
    98: None,
}
#: rows whose command is interrupted with Ctrl-C once it is under way: (wait for this, in the checkpoint or stderr)
INTERRUPTED = {97: "checkpoint", 98: "running `alice eval` first"}


def test_every_row_has_a_case():
    rows = catalogue()
    assert sorted(rows) == list(range(1, len(rows) + 1)), "catalogue rows are numbered 1, 2, 3, ..."
    assert set(rows) == set(CASES), (
        f"rows without a case: {set(rows) - set(CASES)}; cases without a row: {set(CASES) - set(rows)}"
    )
    for n, (_, command, line) in rows.items():
        assert command.startswith("alice "), f"row {n}: the command is an alice command line"
        assert line, f"row {n} says what the user sees"


def _run_interrupted(n: int, words: list[str], work: Path) -> Result:
    proc = subprocess.Popen(
        [sys.executable, "-m", "alice", *words],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_heard,
    )
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.time() + 600
    wait_for = INTERRUPTED[n]
    while time.time() < deadline and proc.poll() is None:
        if wait_for == "checkpoint" and (work / ".o.checkpoint" / "checkpoint.json").is_file():
            break
        if wait_for != "checkpoint" and any(wait_for in line for line in err):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read()
    proc.wait(timeout=120)
    reader.join(timeout=10)
    return Result(proc.returncode, out, "".join(err))


@pytest.mark.slow
@pytest.mark.parametrize("n", sorted(catalogue()))
def test_catalogue_row(n, tiny_reference, tmp_path):
    what, command, line = catalogue()[n]
    if n == 37 and torch.cuda.is_available():
        pytest.skip("asks for CUDA where there is none")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(tiny_reference, work / "ref")
    case = CASES[n]
    got = case(work) if case is not None else None
    cleanup = got if callable(got) else None
    options = got if isinstance(got, dict) else {}
    words = shlex.split(command.removesuffix(" (then Ctrl-C)"))[1:]
    try:
        if n in INTERRUPTED:
            r = _run_interrupted(n, words, work)
        else:
            r = alice(*words, cwd=work, env=options.get("env"), fresh=options.get("fresh", False))
    finally:
        if cleanup is not None:
            cleanup()
    printed = r.out + r.err
    assert "Traceback" not in printed, f"row {n} ({what}): a traceback\n{printed[-3000:]}"
    if line.startswith("error:"):
        assert r.code != 0, f"row {n}: exit 0\n{printed[-2000:]}"
        assert len(r.errors) == 1, f"row {n}: {len(r.errors)} error lines\n{r.err[-2000:]}"
        assert matches(line, r.errors[0]), f"row {n}: expected {line!r}\n got      {r.errors[0]!r}"
        assert r.code == (
            130 if n in INTERRUPTED else 1 if "reference verify" in command and "--rehash" not in command else 2
        )
    elif line.startswith("warning:"):
        assert r.code == 0, f"row {n}: exit {r.code}\n{r.err[-2000:]}"
        warnings = [x for x in r.err.splitlines() if x.startswith("warning:")]
        assert any(matches(line, w) for w in warnings), f"row {n}: expected {line!r}\n got {warnings}"
    else:
        assert r.code == 0, f"row {n}: expected {line!r} in\n{printed[-3000:]}"
        assert matches(line, printed), f"row {n}: expected {line!r} in\n{printed[-3000:]}"
