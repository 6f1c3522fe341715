"""Commands that describe things stay quick: `alice plugins list`, `reference show` and `index list` import no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures("recipe_dir")

#: runs one command in a new process and prints the ML libraries it imported
PROBE = (
    "import sys\n"
    "from alice.cli import main\n"
    "sys.argv = ['alice', *sys.argv[1:]]\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    heavy = sorted(m for m in ('torch', 'transformers', 'faiss', 'fastapi') if m in sys.modules)\n"
    "    print('IMPORTED', heavy, file=sys.stderr)\n"
)


def imported(*args) -> tuple[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("IMPORTED"))
    return done.stdout, eval(line.removeprefix("IMPORTED "))


@pytest.fixture(scope="module")
def with_index(tiny_reference, tmp_path_factory):
    ref = tmp_path_factory.mktemp("cold") / "ref"
    shutil.copytree(tiny_reference, ref)
    from alice.search.index import build_index

    build_index(ref, "image", "test", device_name="cpu")
    return ref


def test_describing_commands_import_no_torch(with_index):
    out, heavy = imported("plugins", "list", "--json")
    assert heavy == [] and "minilm" in out
    out, heavy = imported("reference", "show", with_index, "--json")
    assert heavy == [] and json.loads(out)["adapters"]["text"]["backbone"] == "minilm"
    out, heavy = imported("index", "list", with_index, "--json")
    assert heavy == [] and json.loads(out)[0]["items"] == 300 and json.loads(out)[0]["status"] == "ok"


def test_reference_show_still_refuses_a_damaged_file(with_index, tmp_path):
    from cli_helpers import refused

    copy = tmp_path / "ref"
    shutil.copytree(with_index, copy)
    weights = copy / "adapters" / "text" / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    refused("does not match the sha256 in space.json", "reference", "show", copy)


def test_a_taken_adapter_name_is_refused_before_torch_loads(tiny_reference):
    """`alice modality add text` on a space that has a text adapter: one line naming the --name that adds it beside
    the other, before torch (and any model) is imported."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "modality", "add", "text", "--reference", str(tiny_reference)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert (
        f"error: reference {tiny_reference} already has an adapter 'text'; add this one beside it with --name text-2, "
        "or pass --overwrite to replace it"
    ) in done.stderr
    assert "IMPORTED []" in done.stderr
