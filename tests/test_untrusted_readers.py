"""Property tests of every reader of bytes someone else wrote: any input gives an AliceError of one line, or
success, never another exception.

Inputs: random bytes, random JSON values, deep nesting, and valid files mutated (a value replaced, a key
dropped or added, bytes flipped, a file cut short). Bounded and derandomised, so CI sees the same examples
every run; ``pytest tests/test_untrusted_readers.py --hypothesis-show-statistics`` shows the counts.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
import tomllib

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from alice.errors import AliceError  # noqa: E402

pytestmark = pytest.mark.usefixtures("recipe_dir")


def bounded(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def one_line_or_success(read, *args) -> Any:
    """Run a reader: it may succeed, or refuse with one AliceError line; anything else fails the property."""
    try:
        return read(*args)
    except AliceError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return None


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
# TOML has no null; numbers of any size (a --set value can hold one)
toml_values = st.recursive(
    st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


#: values that are of the right kind to some field and wrong for another: sizes, signs, types, emptiness
HOSTILE = [True, -1, 0, 10**12, 2**64, 1.5, float("nan"), "", "x", [], {}, ["x"], [-1], [10**12]]


def places(node: Any) -> list[tuple[Any, Any]]:
    """Every ``(container, key)`` of a JSON document, at any depth."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    out = []
    for key, value in list(items):
        out += [(node, key), *places(value)]
    return out


@st.composite
def mutated(draw, doc: Any, values=json_values, hostile=(None, *HOSTILE)) -> Any:
    """``doc`` with one to three changes, each at a place drawn uniformly from all of its places: a value
    replaced (by a random value, or one of the wrong size, sign or type), a key dropped, a key added."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        found = places(doc)
        if not found:
            break
        node, key = draw(st.sampled_from(found))
        action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if action == "replace":
            node[key] = draw(values | st.sampled_from(hostile).map(copy.deepcopy))  # never the shared object
        elif action == "drop":
            del node[key]
        elif isinstance(node, dict):
            node[draw(text)] = draw(values)
        else:
            node.append(draw(values))
    return doc


def flipped(raw: bytes, data, window: int | None = None) -> bytes:
    """``raw`` with a few bytes changed (within the first ``window`` bytes), or cut short."""
    out = bytearray(raw)
    if data.draw(st.booleans(), label="cut"):
        return bytes(out[: data.draw(st.integers(0, len(out) - 1), label="length")])
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        at = data.draw(st.integers(0, min(len(out), window or len(out)) - 1), label="at")
        out[at] = data.draw(st.integers(0, 255), label="byte")
    return bytes(out)


# --------------------------------------------------------------------------- JSON and TOML themselves


@bounded(200)
@given(
    raw=st.binary(max_size=64)
    | json_values.map(json.dumps)
    | st.integers(60, 5000).map(nested)
    | st.integers(60, 5000).map(lambda n: nested(n, '{"a":', "}").replace("}", "1}", 1))
    | st.integers(4300, 5000).map(lambda n: "1" * n)
)
def test_the_json_reader(raw):
    from alice.files import parse_json

    one_line_or_success(parse_json, raw, "x.json")


# --------------------------------------------------------------------------- a space: space.json, the manifests


@pytest.fixture(scope="module")
def space(tiny_reference, tmp_path_factory) -> Path:
    """The tiny reference, without space.json: its manifests are read as they are (an older space)."""
    out = tmp_path_factory.mktemp("untrusted") / "ref"
    shutil.copytree(tiny_reference, out, ignore=shutil.ignore_patterns("indexes", "report"))
    (out / "space.json").unlink()
    return out


@bounded(150)
@given(data=st.data())
def test_space_json(space, tiny_reference, data):
    from alice.artifacts.space import read_record

    valid = json.loads((tiny_reference / "space.json").read_text())
    content = data.draw(
        st.binary(max_size=64)
        | json_values.map(json.dumps).map(str.encode)
        | mutated(valid).map(json.dumps).map(str.encode)
        | st.integers(60, 3000).map(nested).map(str.encode),
        label="space.json",
    )
    (space / "space.json").write_bytes(content)
    try:
        one_line_or_success(read_record, space)
    finally:
        (space / "space.json").unlink()


@bounded(120)
@given(data=st.data())
def test_reference_and_adapter_manifests(space, tiny_reference, data):
    """A manifest changed by hand in a space without space.json is read field by field: loading the space
    (``alice.load``, and ``alice reference show``'s torch-free reading) refuses it or works."""
    from alice.api import Space
    from alice.artifacts.describe import ReferenceFacts

    name = data.draw(st.sampled_from(["reference.json", "adapters/image/adapter.json", "adapters/text/adapter.json"]))
    original = (tiny_reference / name).read_bytes()
    valid = json.loads(original)
    content = data.draw(
        mutated(valid).map(json.dumps) | json_values.map(json.dumps) | st.integers(60, 3000).map(nested),
        label=name,
    )
    (space / name).write_text(content)
    try:
        one_line_or_success(ReferenceFacts.read, space)
        one_line_or_success(Space.load, space)
    finally:
        (space / name).write_bytes(original)


# --------------------------------------------------------------------------- recipes


@bounded(120)
@given(data=st.data())
def test_recipes(recipe_dir, data):
    from alice.data.recipes import _apply_override, parse_recipe
    from alice.data.scaffold import toml_key, toml_value
    from alice.files import parse_toml

    valid = parse_toml((recipe_dir / "tiny-image.toml").read_text(), "tiny-image")
    doc = data.draw(mutated(valid, toml_values, HOSTILE), label="recipe")
    source = data.draw(
        st.just("\n".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items()))
        | text
        | st.integers(60, 3000).map(lambda n: "a = " + nested(n)),
        label="text",
    )
    override = data.draw(st.just("") | text | st.integers(60, 3000).map(nested), label="--set")

    def read() -> Any:
        try:
            raw = parse_toml(source, "recipe r.toml")
        except tomllib.TOMLDecodeError:  # a syntax error: the recipe reader words it (tests/test_bad_inputs.py)
            return None
        _apply_override(raw, f"model.latent_dim={override}")
        return parse_recipe(raw, "r", "r.toml", quiet=True)

    one_line_or_success(read)


# --------------------------------------------------------------------------- index files


@pytest.fixture(scope="module")
def index_bytes(tmp_path_factory) -> bytes:
    import torch

    from alice.artifacts.indexes import write_index

    path = tmp_path_factory.mktemp("index") / "i.safetensors"
    z = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    meta = {"modality": "text", "split": "test", "reference_sha256": "r", "adapter_sha256": "a"}
    write_index(path, z, meta, torch.ones(6, 3), [1, 0, 1], [f"item {i}" for i in range(6)], list("abcdef"))
    return path.read_bytes()


@bounded(300)
@given(data=st.data())
def test_index_headers(index_bytes, tmp_path_factory, data):
    from alice.artifacts.indexes import Index

    header = int.from_bytes(index_bytes[:8], "little") + 8
    raw = data.draw(st.binary(max_size=64) | st.just(index_bytes), label="file")
    if raw == index_bytes:
        raw = flipped(raw, data, window=header)
    path = tmp_path_factory.getbasetemp() / "hostile.safetensors"
    path.write_bytes(raw)
    index = one_line_or_success(Index.open, path)
    if index is not None:
        one_line_or_success(lambda: index.search(__import__("torch").ones(1, 4), 3))


# --------------------------------------------------------------------------- archives


@pytest.fixture(scope="module")
def archive_members(tiny_reference) -> list[tuple[str, bytes]]:
    keep = ("reference.json", "space.json", "adapters/text/adapter.json")  # small files; weights left out
    return [(f"ref/{rel}", (tiny_reference / rel).read_bytes()) for rel in keep]


KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.GNUTYPE_SPARSE]


@bounded(200)
@given(data=st.data())
def test_archive_headers(archive_members, tmp_path_factory, data):
    from alice.artifacts.sharing import import_reference
    from alice.files import ImportLimits

    names = st.sampled_from([n for n, _ in archive_members] + ["ref/../x.json", "/abs.json", "ref/.h.json"]) | text
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in archive_members:
            if data.draw(st.booleans(), label="change"):
                content = data.draw(st.binary(max_size=32) | st.integers(60, 2000).map(nested).map(str.encode))
            info = tarfile.TarInfo(data.draw(names, label="name") if data.draw(st.booleans()) else name)
            info.type = data.draw(st.sampled_from(KINDS), label="type") if data.draw(st.booleans()) else tarfile.REGTYPE
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    raw = buffer.getvalue()
    if data.draw(st.booleans(), label="flip"):
        raw = flipped(raw, data)
    folder = tmp_path_factory.mktemp("archive")
    (folder / "a.tar.gz").write_bytes(raw if data.draw(st.booleans()) else data.draw(st.binary(max_size=64)))
    limits = ImportLimits(entries=20, entry_size=1 << 20, total_size=4 << 20)
    one_line_or_success(import_reference, folder / "a.tar.gz", folder / "into", False, limits)


# --------------------------------------------------------------------------- labels files of the file data sets


@bounded(200)
@given(data=st.data())
def test_labels_files(tmp_path_factory, data):
    from alice_plugins.files.manifest import read_manifest

    suffix = data.draw(st.sampled_from([".csv", ".jsonl"]), label="kind")
    valid = (
        'path,labels,split\na.png,"[""cat""]",train\nb.png,dog;cat,\n'
        if suffix == ".csv"
        else '{"path": "a.png", "labels": ["cat"]}\n{"path": "b.png", "labels": "dog", "split": "test"}\n'
    )
    content = data.draw(
        st.just(valid.encode())
        | st.binary(max_size=64)
        | text.map(str.encode)
        | st.integers(60, 3000).map(lambda n: ('{"path": "a", "labels": ' + nested(n) + "}\n").encode()),
        label="content",
    )
    if content == valid.encode():
        content = flipped(content, data)
    path = tmp_path_factory.getbasetemp() / f"labels{suffix}"
    path.write_bytes(content)
    one_line_or_success(read_manifest, path, "path", "image-folder")
