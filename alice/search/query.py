"""One search, from a query to its ranked items: what `alice search`, `alice serve` and Python share.

A query is text, a file (image, sound, ...) or an item already in an index; the adapter that
reads it is the one whose backbone declares it (:meth:`alice.Space.modality_of`), or the one
named. Its latent is classified by C_ref, optionally edited by M_ref ("replace OLD with NEW"),
and the (edited) latent searched for in an index of any modality of the same space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from alice.api import Space
from alice.artifacts.integrity.record import DERIVED, role
from alice.artifacts.publish import inside
from alice.errors import AliceError
from alice.search.export import LanceIndex, is_export
from alice.search.indexes import Index, split_pin


def parse_replacement(text: str, what: str = "--replace") -> tuple[str, str]:
    """``"OLD=NEW"`` -> ``("OLD", "NEW")``, names as written (the space checks them); ``what`` names the option."""
    parts = str(text).split("=")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise AliceError(f"{what} takes OLD=NEW (e.g. three=seven), got {text!r}")
    return parts[0].strip(), parts[1].strip()


def open_index(space: Space, path: str | Path) -> Index:
    """An index file, refused unless its bytes are the ones expected and it was built with this space's reference
    and its adapter of that modality.

    ``path`` may be pinned, ``FILE@sha256:HEX``; an index inside the space is checked against the sha256
    ``space.json`` records for it. Either check runs before any byte of the file is parsed. An index neither
    pinned nor recorded (a file of your own beside the space) is checked after loading: its header, and an
    approximate index's every item id and link, against the embeddings it holds.
    """
    file, expected = split_pin(path)
    if is_export(file):  # a vector database `alice index export` wrote: the same checks against the space
        index = LanceIndex.open_export(file)
        space.check_index(index)
        return index
    source = "its pin"
    rel = inside(file, space.path)
    record = space.reference.inspection.record if space.reference.inspection is not None else None
    if rel is not None and record is not None and file.exists():  # a missing one: Index.open says "no index at"
        entry = record.entries.get(rel)
        if entry is None or role(rel) != DERIVED:
            raise AliceError(
                f"{file} lies inside reference {space.path}, whose space.json names no index there; "
                "build one with `alice index build`"
            )
        if expected is None:
            expected, source = entry.sha256, "space.json"
    index = Index.open(file, expected, source)
    space.check_index(index)  # before any query's backbone is built
    reads = space.reads(index.modality)
    if index.texts is not None and index.files is None and reads.file_suffixes and not reads.reads_text:
        # an index written before files were kept apart holds an image folder's paths as its "texts"
        index.files, index.texts = index.texts, None
    return index


def encode_query(space: Space, query: str | Path, source: str | None = None) -> tuple[str, torch.Tensor]:
    """``(modality, latent [1, d])`` of a text or a file; ``source`` names the adapter, else the query's kind does."""
    name = source if source is not None else space.modality_of(query)
    space.adapter(name)  # an unknown name lists the adapters there are
    return name, space.encode(name, [query])


def item_latent(index: Index, row: int) -> torch.Tensor:
    """The search latent ``[1, d]`` of an item already in an index (a "more like this" query).

    An index holds search latents: for an adapter that declares a search transform (``[alignment]
    centre``/``project``) they are not the latents C_ref was trained on, so C_ref's reading of such an
    item, and an edit of it, are approximate.
    """
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < index.count:
        raise AliceError(f"index {index.name} has rows 0 to {index.count - 1}, got {row!r}")
    return torch.from_numpy(index.rows([row]).copy())


def classification(space: Space, z: torch.Tensor, modality: str, edited: bool = False) -> dict[str, Any]:
    """C_ref's reading of one latent: the predicted labels, every class's probability, and ``warnings``.

    A warning flags a reading that rests on classes ``modality`` does not annotate
    (:meth:`alice.Space.warnings`); ``edited``: the latent is the query after M_ref's edit.
    """
    p = space.classify(z)[0].tolist()
    lines = space.warnings(z, modality)[0]
    return {
        "labels": space.labels(z, modality, warn=False)[0],
        "probabilities": {label: round(float(x), 4) for label, x in zip(space.vocabulary, p)},
        "warnings": [f"after the edit, {w}" for w in lines] if edited else lines,
    }


def edit(space: Space, z: torch.Tensor, modality: str, replace: tuple[str, str]) -> tuple[torch.Tensor, list[str], str]:
    """M_ref's "replace OLD with NEW": ``(edited latent, [OLD, NEW] as spelt in the vocabulary, a warning or "")``."""
    old, new = (space.vocabulary[space.label_index(x)] for x in replace)
    present = space.labels(z, modality, warn=False)[0]
    warning = ""
    if old not in present:
        warning = (
            f"the query's predicted labels ({', '.join(present) or 'none'}) do not include {old!r}: M_ref was trained "
            f"to replace classes that are present, so this edit may do little more than add {new!r}"
        )
    return space.intervene(z, (old, new), through=modality), [old, new], warning


def ranked(
    space: Space, index: Index, z: torch.Tensor, k: int, exact: bool = False, modality: str | None = None
) -> list[dict[str, Any]]:
    """The top ``k`` items of ``index`` for one latent: rank, row, score, labels, and text, file or pair id where
    stored.

    ``modality``: the adapter that read ``z``, whose search transform it goes through first, as the index's
    items did (None: ``z`` is a search latent already, an index item's).
    """
    if modality is not None:
        z = space.search_latents(modality, z)
    scores, rows = index.search(z, k, exact=exact)
    return [
        {
            "rank": r + 1,
            "row": int(i),
            "score": round(float(s), 4),
            "labels": index.label_names(int(i), space.vocabulary),
            **({"text": index.texts[int(i)]} if index.texts else {}),
            **({"file": index.files[int(i)]} if index.files else {}),
            **({"pair_id": index.pair_ids[int(i)]} if index.pair_ids else {}),
        }
        for r, (s, i) in enumerate(zip(scores[0].tolist(), rows[0].tolist()))
    ]


def search(
    space: Space,
    index: Index,
    z: torch.Tensor,
    modality: str,
    k: int = 10,
    replace: tuple[str, str] | None = None,
    exact: bool = False,
) -> dict[str, Any]:
    """Search ``index`` for a query latent read by ``modality``, edited first when ``replace`` is given.

    The result (what ``alice search --json`` prints): ``from``, ``in``, ``items``, ``query_labels``,
    ``query_probabilities``; with ``replace``, also ``replace``, ``edited_labels``,
    ``edited_probabilities``; ``warnings`` (one line each); ``results``.
    """
    seen = classification(space, z, modality)
    result: dict[str, Any] = {
        "from": modality,
        "in": str(index.path),
        "index": index.name,
        "kind": "exact" if exact else index.kind,
        "items": index.count,
        "query_labels": seen["labels"],
        "query_probabilities": seen["probabilities"],
        "warnings": seen["warnings"],
    }
    if replace is not None:
        z, result["replace"], warning = edit(space, z, modality, replace)
        edited = classification(space, z, modality, edited=True)
        result["edited_labels"], result["edited_probabilities"] = edited["labels"], edited["probabilities"]
        result["warnings"] += ([warning] if warning else []) + edited["warnings"]
    result["results"] = ranked(space, index, z, k, exact, modality)
    return result
