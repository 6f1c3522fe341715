"""``alice index build`` and ``alice search``: cross-modal and counterfactual search."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from alice import console
from alice.cli.options import Device, Json, Overwrite
from alice.tables import Table

index_app = typer.Typer(help="Indexes of one modality's latents, for `alice search`.", no_args_is_help=True)


@index_app.command("build")
def index_build(
    path: Path = typer.Argument(..., help="Reference folder."),
    modality: str = typer.Option(..., "--modality", "-m", help="The adapter whose data set to embed (e.g. image)."),
    split: str = typer.Option("test", "--split", help="Which split of that data set: train, val or test."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Index file (default: <reference>/indexes/<modality>-<split>.safetensors)."
    ),
    overwrite: bool = Overwrite,
    device: Optional[str] = Device,
) -> None:
    """Embed one split of a modality's data set into an index file for `alice search`."""
    from alice.artifacts.indexes import Index
    from alice.search.index import build_index

    written = build_index(path, modality, split, out, overwrite, device or "auto")
    index = Index.open(written)
    console.info(f"wrote {written}: {index.count:,} {modality} items, {index.dim}-d")


@index_app.command("list")
def index_list(path: Path = typer.Argument(..., help="Reference folder."), as_json: bool = Json) -> None:
    """The indexes stored in a reference folder."""
    from alice.artifacts.indexes import Index
    from alice.artifacts.layout import INDEX_FOLDER
    from alice.artifacts.store import ReferenceSpace
    from alice.artifacts.verify import check_index

    ref = ReferenceSpace.load(path)
    rows = []
    for f in sorted((ref.path / INDEX_FOLDER).glob("*.safetensors")):
        finding = check_index(f, f.name, ref)  # the same check as `alice reference verify`
        row: dict[str, Any] = {"file": f.name, "status": "ok" if finding.ok else finding.detail}
        if finding.ok:
            index = Index.open(f)
            row.update(modality=index.modality, split=index.meta.get("split"), items=index.count)
        rows.append(row)
    if as_json:
        console.print_json(rows)
        return
    console.table(
        Table(
            f"indexes of {ref.path}",
            ["file", "modality", "split", "items", "status"],
            [[r["file"], r.get("modality"), r.get("split"), r.get("items"), r["status"]] for r in rows],
        )
    )


def _index_path(ref_path: Path, target: str, split: str) -> Path:
    from alice.artifacts.indexes import default_index_path

    if target.endswith(".safetensors") or "/" in target:
        return Path(target)
    return default_index_path(ref_path, target, split)


def _replacement(text: str) -> tuple[str, str]:
    from alice.errors import AliceError

    parts = text.split("=")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise AliceError(f"--replace takes OLD=NEW (e.g. three=seven), got {text!r}")
    return parts[0].strip(), parts[1].strip()


def search_command(
    path: Path = typer.Argument(..., help="Reference folder."),
    query: str = typer.Argument(..., help="Text, or an image or audio file."),
    target: str = typer.Option(
        ..., "--in", help="Where to search: a modality with an index (e.g. image), or an index file."
    ),
    source: Optional[str] = typer.Option(
        None, "--from", help="The adapter that reads the query (default: by the query's kind)."
    ),
    replace: Optional[str] = typer.Option(
        None,
        "--replace",
        help="Counterfactual query: OLD=NEW, e.g. three=seven (M_ref edits the query's latent first).",
    ),
    k: int = typer.Option(10, "--k", "-k", min=1, help="How many results."),
    split: str = typer.Option("test", "--split", help="The index's split, when --in names a modality."),
    device: Optional[str] = Device,
    as_json: bool = Json,
) -> None:
    """Search an index with a query of another modality; with --replace, search for the edited query."""
    from alice.api import Space
    from alice.artifacts.indexes import Index

    space = Space.load(path, device or "cpu")
    index = Index.open(_index_path(space.path, target, split))
    space.check_index(index)  # before the query's backbone is built
    name = source if source is not None else space.modality_of(query)
    space.adapter(name)  # an unknown --from names the adapters there are
    z = space.encode(name, [query])
    result: dict[str, Any] = {
        "query": query,
        "from": name,
        "in": str(index.path),
        "items": index.count,
        "query_labels": space.labels(z, name)[0],
    }
    if replace:
        old, new = (space.vocabulary[space.label_index(x)] for x in _replacement(replace))
        if old not in result["query_labels"]:
            console.warn(
                f"the query's predicted labels ({', '.join(result['query_labels']) or 'none'}) do not include {old!r}: "
                "M_ref was trained to replace classes that are present, so this edit may do little more than add "
                f"{new!r}"
            )
        z = space.intervene(z, (old, new), through=name)
        result["replace"] = [old, new]
        result["edited_labels"] = space.labels(z, name)[0]
    scores, rows = space.search(index, z, name, k)
    result["results"] = [
        {
            "rank": r + 1,
            "row": int(i),
            "score": round(float(s), 4),
            "labels": index.label_names(int(i), space.vocabulary),
            **({"text": index.texts[int(i)]} if index.texts else {}),
            **({"pair_id": index.pair_ids[int(i)]} if index.pair_ids else {}),
        }
        for r, (s, i) in enumerate(zip(scores[0].tolist(), rows[0].tolist()))
    ]
    if as_json:
        console.print_json(result)
        return
    what = f"{name} query, predicted labels: {', '.join(result['query_labels']) or 'none'}"
    if replace:
        old, new = result["replace"]
        what += f"; after replacing {old} with {new}: {', '.join(result['edited_labels']) or 'none'}"
    if not result["results"]:
        console.info(f"index {index.path} holds no items")
        return
    columns = ["rank", "score", "labels", "text" if index.texts else "item"]
    console.table(
        Table(
            f"top {len(result['results'])} of {index.count:,} {index.modality} items",
            columns,
            [
                [
                    r["rank"],
                    r["score"],
                    ", ".join(r["labels"]),
                    r.get("text") or f"#{r['row']}" + (f" ({r['pair_id']})" if "pair_id" in r else ""),
                ]
                for r in result["results"]
            ],
            what,
        )
    )
