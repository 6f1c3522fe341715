"""Other people's bytes: index files (checked against space.json or a pin before FAISS reads them, and after
loading), deeply nested JSON and TOML, `hf` model folders holding pickles or code, and recipe sizes no machine
can hold. Each is refused in one line."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import time

import numpy as np
import pytest
import torch
from cli_helpers import ok, refused

from alice.errors import AliceError

pytestmark = pytest.mark.usefixtures("recipe_dir")

QUERY = "one digit: five"


def rewrite_faiss(path, change, out=None) -> None:
    """Change the FAISS index inside an index file with ``change(index)``, its sha256 in the metadata to match
    (what someone who means harm does: the file's own hash then agrees)."""
    import faiss
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), "numpy") as f:
        meta, tensors = json.loads(f.metadata()["alice"]), {k: f.get_tensor(k) for k in f.keys()}
    index = faiss.deserialize_index(tensors["ann.faiss"])
    change(index)
    blob = faiss.serialize_index(index)
    tensors["ann.faiss"] = blob
    meta["ann"].update(sha256=hashlib.sha256(blob).hexdigest(), bytes=int(blob.nbytes))
    save_file(tensors, str(out or path), metadata={"alice": json.dumps(meta, sort_keys=True)})


def ids_to_a_trillion(index) -> None:
    import faiss

    lists = faiss.extract_index_ivf(index).invlists
    for i in range(lists.nlist):
        if lists.list_size(i):
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i))[:] = 10**12


def test_an_index_in_a_space_is_checked_against_space_json_then_after_loading(reference_copy):
    pytest.importorskip("faiss")
    from alice.serve.state import Served

    ref = reference_copy
    ok("index", "build", ref, "-m", "image", "--kind", "ivf")
    index = ref / "indexes" / "image-test.safetensors"
    size = index.stat().st_size
    rewrite_faiss(index, ids_to_a_trillion)
    assert index.stat().st_size == size  # the same size: a check of sizes alone let it through
    refused("image-test.safetensors does not match the sha256 in space.json", "search", ref, QUERY, "--in", "image")
    # space.json rewritten to match (derived files are outside the digest): checked after loading
    ok("reference", "verify", ref, "--rehash")
    line = "its FAISS index names item 1000000000000, outside 0 to 299"
    refused(line, "search", ref, QUERY, "--in", "image")
    served = Served.load(ref)  # the server starts, without that index
    assert "image-test" not in served.indexes and line in served.refused["image-test"]


def test_an_index_outside_the_space_is_pinned_or_checked_after_loading(reference_copy, tmp_path):
    pytest.importorskip("faiss")
    import faiss

    from alice.artifacts.describe import IndexHeader
    from alice.artifacts.indexes import write_index
    from alice.serve.spec import ServeSpec
    from alice.serve.state import Served

    ref, mine = reference_copy, tmp_path / "mine.safetensors"
    built = ok("index", "build", ref, "-m", "image", "--kind", "hnsw", "--out", mine)
    pin = built.err.split("pin it as ")[1].split()[0]
    assert pin == f"{mine}@sha256:{hashlib.sha256(mine.read_bytes()).hexdigest()}"
    ok("search", ref, QUERY, "--in", pin, "-k", "3")

    def link_to_the_ground(index) -> None:
        """A link at layer 1 to an item on layer 0 only (FAISS's own reader checks ranges, not layers)."""
        h = index.hnsw
        levels, offsets = faiss.vector_to_array(h.levels), faiss.vector_to_array(h.offsets)
        upper, ground = int(np.flatnonzero(levels >= 2)[0]), int(np.flatnonzero(levels == 1)[0])
        first = int(offsets[upper]) + int(faiss.vector_to_array(h.cum_nneighbor_per_level)[1])
        faiss.rev_swig_ptr(h.neighbors.data(), h.neighbors.size())[first] = ground

    rewrite_faiss(mine, link_to_the_ground)
    refused("mine.safetensors does not match the sha256 in its pin", "search", ref, QUERY, "--in", pin)
    line = "its FAISS index links to an item at layer 1 that is not on it"
    refused(line, "search", ref, QUERY, "--in", mine)
    refused("a pinned index is FILE@sha256:", "search", ref, QUERY, "--in", f"{mine}@sha256:abc")
    with pytest.raises(AliceError, match=line):  # alice serve --index FILE: no server starts
        Served.load(ref, ServeSpec(indexes=[mine]))
    # another latent size, its metadata copied from a real index: refused before any query
    header = IndexHeader.read(mine).meta
    keep = {k: header[k] for k in ("modality", "split", "reference_sha256", "adapter_sha256", "search", "dataset")}
    narrow = write_index(
        tmp_path / "narrow.safetensors", torch.nn.functional.normalize(torch.randn(300, 16), dim=1), keep
    )
    refused("holds 16-d latents; this space's are 32-d", "search", ref, QUERY, "--in", narrow)
    with pytest.raises(AliceError, match="holds 16-d latents"):
        Served.load(ref, ServeSpec(indexes=[f"{narrow}@sha256:{hashlib.sha256(narrow.read_bytes()).hexdigest()}"]))


def test_a_faiss_index_is_checked_part_by_part_after_loading(tmp_path):
    pytest.importorskip("faiss")
    import faiss

    from alice.artifacts.ann import AnnSpec, build, check_loaded

    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(2000, 16, generator=g), dim=1).numpy()
    hnsw = faiss.deserialize_index(build(x, AnnSpec(kind="hnsw", hnsw_m=8, recall_queries=0)).blob)
    ivf = faiss.deserialize_index(build(x, AnnSpec(kind="ivf", recall_queries=0)).blob)
    assert check_loaded(hnsw, "hnsw", 2000, 16) == "" and check_loaded(ivf, "ivf", 2000, 16) == ""
    assert "holds 2000 items of 16 dimensions, the file's embeddings 300 of 16" in check_loaded(ivf, "ivf", 300, 16)
    assert "holds 2000 items of 16 dimensions" in check_loaded(hnsw, "hnsw", 2000, 8)
    assert "is IndexHNSWSQ, not an IVF index" in check_loaded(hnsw, "ivf", 2000, 16)
    # a link at an upper layer to an item that is only on layer 0: a search would read past that item's links
    h = hnsw.hnsw
    levels = faiss.vector_to_array(h.levels)
    offsets, cum = faiss.vector_to_array(h.offsets), faiss.vector_to_array(h.cum_nneighbor_per_level)
    upper, ground = int(np.flatnonzero(levels >= 2)[0]), int(np.flatnonzero(levels == 1)[0])
    links = faiss.rev_swig_ptr(h.neighbors.data(), h.neighbors.size())
    first = int(offsets[upper]) + int(cum[1])  # its first link at layer 1
    links[first] = ground
    assert "links to an item at layer 1 that is not on it" in check_loaded(hnsw, "hnsw", 2000, 16)
    links[0] = -5
    assert "links item -5, outside 0 to 1999" in check_loaded(hnsw, "hnsw", 2000, 16)
    links[0], h.entry_point = 1, 2000
    links[first] = upper
    assert "enters its graph elsewhere than at its top layer" in check_loaded(hnsw, "hnsw", 2000, 16)
    ids_to_a_trillion(ivf)
    assert "names item 1000000000000, outside 0 to 1999" in check_loaded(ivf, "ivf", 2000, 16)


def test_a_remembered_hash_is_never_taken_for_changed_bytes(tmp_path, monkeypatch):
    from alice.files import sha256_remembered

    monkeypatch.setenv("ALICE_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "x.bin"
    f.write_bytes(b"a" * 1000)
    first = sha256_remembered(f)
    assert json.loads((tmp_path / "cache" / "sha256.json").read_text())[str(f)]["sha256"] == first
    assert sha256_remembered(f) == first
    st = f.stat()
    time.sleep(0.01)
    with open(f, "r+b") as out:  # same size, then its modification time put back: the change time still moves
        out.write(b"b")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sha256_remembered(f) == hashlib.sha256(b"b" + b"a" * 999).hexdigest() != first


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def test_deep_nesting_is_one_line_in_every_json_and_toml_reader(reference_copy, tmp_path):
    deep = nested(100_000)
    line = "nests lists or tables more than 64 levels deep"
    for name in ("space.json", "reference.json"):
        space = tmp_path / name.split(".")[0]
        shutil.copytree(reference_copy, space)
        (space / name).write_text(deep)
        refused(f"{name} {line}", "reference", "show", space)
    archive = tmp_path / "deep.tar.gz"  # an imported archive's manifest
    with tarfile.open(archive, "w:gz") as tar:
        for f in sorted(reference_copy.rglob("*")):
            rel = f.relative_to(reference_copy)
            if f.is_file() and rel.parts[0] != "indexes":
                data = deep.encode() if str(rel) == "reference.json" else f.read_bytes()
                info = tarfile.TarInfo(f"deep/{rel}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    refused(f"reference.json {line}", "reference", "import", archive, "--into", tmp_path / "into")
    recipe = tmp_path / "deep.toml"
    recipe.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    refused(f"recipe {recipe} {line}", "reference", "build", recipe)
    refused(
        f"--set model.latent_dim {line}",
        "reference",
        "build",
        "tiny-image",
        "--set",
        "model.latent_dim=" + "[" * 300 + "]" * 300,
    )
    labels = tmp_path / "labels.jsonl"  # a file data set's labels, through alice.plugin.parse_json
    labels.write_text(nested(5000) + "\n")
    from alice_plugins.files.manifest import read_records

    with pytest.raises(AliceError, match=f"labels.jsonl line 1 {line}"):
        list(read_records(labels, "text-file"))


def test_an_hf_model_folder_with_pickled_weights_or_code_of_its_own_is_refused(tiny_bert, tmp_path):
    from safetensors.torch import load_file

    from alice_plugins.hub import HFBackbone

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_bert, pickled)
    state = load_file(pickled / "model.safetensors")
    (pickled / "model.safetensors").unlink()
    torch.save({**state, "payload": Payload()}, pickled / "pytorch_model.bin")
    with pytest.raises(AliceError) as exc:
        HFBackbone(model=str(pickled)).extract(["a seven"], torch.device("cpu"))
    assert "holds its weights as a pickle (pytorch_model.bin)" in str(exc.value)
    assert "save_pretrained(folder, safe_serialization=True)" in str(exc.value) and not marker.exists()
    # a model whose architecture is its own code: refused, the code never imported
    custom = tmp_path / "custom"
    shutil.copytree(tiny_bert, custom)
    config = json.loads((custom / "config.json").read_text())
    config.update(model_type="alice-custom", auto_map={"AutoConfig": "configuration_x.XConfig"})
    (custom / "config.json").write_text(json.dumps(config))
    (custom / "configuration_x.py").write_text(f"open({str(marker)!r}, 'w')\n")
    with pytest.raises(AliceError, match="it needs code of its own, and ALICE never runs a model.s code"):
        _ = HFBackbone(model=str(custom)).feature_dim
    assert not marker.exists()


def test_sizes_beyond_memory_and_steps_beyond_the_maximum_are_refused_before_any_allocation(tmp_path):
    from alice.core.modules import mlp
    from alice.data.recipes import mlp_parameters

    sizes = [7, 128, 64, 3]
    assert mlp_parameters(sizes) == sum(p.numel() for p in mlp(sizes).parameters())
    o = tmp_path / "o"
    r = refused(
        "model.latent_dim 1000000000000",
        "reference",
        "build",
        "tiny-image",
        "--out",
        o,
        "--set",
        "model.latent_dim=1000000000000",
    )
    assert "make at least 385,000,000,050,306 parameters, 1.4 PiB of float32 weights" in r.errors[0]
    assert "this machine has" in r.errors[0] and "of memory: choose smaller sizes" in r.errors[0]
    refused(
        "model.encoder_hidden [100000000000]",
        "reference",
        "build",
        "tiny-image",
        "--out",
        o,
        "--set",
        "model.encoder_hidden=[100000000000]",
    )
    refused(
        "training.steps must be at most 100,000,000",
        "reference",
        "build",
        "tiny-image",
        "--out",
        o,
        "--set",
        f"training.steps={10**40}",
    )
    # the intervention's size is known once the classes are: checked before it is built (on the meta device)
    r = refused(
        "intervention.hidden 100000000000",
        "reference",
        "build",
        "tiny-image",
        "--out",
        o,
        "--set",
        "intervention.hidden=100000000000",
    )
    assert "of memory available: choose smaller sizes" in r.errors[0] and not o.exists()


def test_a_long_training_says_how_long_before_it_goes_on(capsys):
    from alice.train import stages

    assert stages.estimate_line("training", 20, 0.2, 100) is None  # a short run says nothing
    timed = []

    def step(n: int) -> dict:
        time.sleep(0.002)
        if n == 30:
            timed.append(capsys.readouterr())
            raise KeyboardInterrupt
        return {"rec": torch.tensor(1.0)}

    with pytest.raises(KeyboardInterrupt):
        stages._loop(10**8, "training", step, dict, 0, None)
    line = next(s for s in timed[0].err.splitlines() if "for the" in s)
    assert line.startswith("training: about ") and "for the 99,999,980 steps left" in line and "ms per step" in line
    assert timed[0].out == ""  # stdout stays for --json
