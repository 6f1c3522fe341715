"""``alice index build`` and ``alice search``: cross-modal and counterfactual search."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from alice import console
from alice.cli.options import Device, ExpectDigest, Json, Overwrite
from alice.config.search import AnnSpec
from alice.tables import Table

index_app = typer.Typer(help="Indexes of one adapter's latents, for `alice search`.", no_args_is_help=True)


@index_app.command("build")
def index_build(
    path: Path = typer.Argument(..., help="Reference folder."),
    modality: str = typer.Option(..., "--modality", "-m", help="The adapter whose data set to embed (e.g. image)."),
    split: str = typer.Option("test", "--split", help="Which split of that data set: train, val or test."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Index file (default: <reference>/indexes/<adapter>-<split>.safetensors)."
    ),
    kind: str = typer.Option(
        AnnSpec.kind,
        "--kind",
        help="exact (every item scanned per query), or an approximate FAISS index: ivf, hnsw, or ivfpq (written "
        "streamed, for more items than memory holds: compressed codes, float16 rows on disk).",
    ),
    nlist: int = typer.Option(AnnSpec.nlist, "--nlist", help="ivf: clusters (0: about 4 sqrt(items))."),
    nprobe: int = typer.Option(AnnSpec.nprobe, "--nprobe", help="ivf: clusters scanned per query."),
    ef_search: int = typer.Option(AnnSpec.ef_search, "--ef-search", help="hnsw: candidates kept per query."),
    pq: int = typer.Option(AnnSpec.pq, "--pq", help="ivfpq: one-byte codes per item (must divide the latent size)."),
    opq: bool = typer.Option(AnnSpec.opq, "--opq", help="ivfpq: rotate the latents (OPQ) before coding them."),
    rerank: int = typer.Option(AnnSpec.rerank, "--rerank", help="Candidates per result wanted, re-scored exactly."),
    parquet: Optional[Path] = typer.Option(
        None, "--parquet", help="ivfpq: index the search latents of a Parquet file `alice embed` wrote (needs --out)."
    ),
    overwrite: bool = Overwrite,
    device: Optional[str] = Device,
) -> None:
    """Embed one split of a modality's data set into an index file for `alice search` and `alice serve`."""
    from alice.artifacts.publish import inside
    from alice.files import sha256_remembered
    from alice.search.build import build_index
    from alice.search.indexes import PIN, Index

    spec = AnnSpec(kind=kind, nlist=nlist, nprobe=nprobe, ef_search=ef_search, pq=pq, opq=opq, rerank=rerank)
    if parquet is not None:
        from alice.api import Space
        from alice.errors import AliceError
        from alice.search.embed import index_from_parquet

        if out is None:
            raise AliceError("--parquet needs --out, the index file to write beside the space")
        written = index_from_parquet(Space.load(path, device or "cpu"), modality, parquet, out, spec, overwrite)
    else:
        written = build_index(path, modality, split, out, overwrite, device or "auto", approximate=spec)
    index = Index.open(written)
    line = f"wrote {written}: {index.count:,} {modality} items, {index.dim}-d"
    settings = index.meta.get("ann", {})
    if "recall_at_10" in settings:
        line += (
            f"; {kind} index ({settings['factory']}), recall@10 against exact search "
            f"{settings['recall_at_10']:.3f} on {settings['recall_queries']} of its items"
        )
    if inside(written, path) is None:  # one inside the space is checked against space.json
        line += f"; pin it as {written}{PIN}{sha256_remembered(written)}"
    console.info(line)


@index_app.command("export")
def index_export(
    index_file: str = typer.Argument(..., help="The index file to export (FILE@sha256:HEX pins it)."),
    to: str = typer.Option(..., "--to", help="The vector database: lancedb."),
    folder: Path = typer.Argument(..., help="The database folder to write."),
    overwrite: bool = Overwrite,
) -> None:
    """Export an index's items (search latents, labels, texts or files) to a vector database."""
    from alice.errors import AliceError
    from alice.search.export import export_lancedb
    from alice.search.indexes import Index, split_pin

    if to != "lancedb":
        raise AliceError(f"unknown vector database {to!r} (known: lancedb)")
    file, digest = split_pin(index_file)
    index = Index.open(file, digest)
    written = export_lancedb(index, folder, overwrite)
    console.info(
        f"wrote {written}: {index.count:,} {index.modality} items; search it with `alice search --in {written}`"
    )


@index_app.command("list")
def index_list(path: Path = typer.Argument(..., help="Reference folder."), as_json: bool = Json) -> None:
    """The indexes stored in a reference folder (read from the files' headers: quick at any size)."""
    from alice.artifacts.integrity.describe import ReferenceFacts
    from alice.errors import AliceError
    from alice.search.header import check_index_header

    ref = ReferenceFacts.read(path)
    rows = []
    for f in ref.index_files():
        row: dict[str, Any] = {"file": f.name}
        try:
            header = check_index_header(ref, f)  # the same checks as `alice reference verify`
        except AliceError as exc:
            row["status"] = str(exc)
        else:
            recall = header.meta.get("ann", {}).get("recall_at_10")
            row.update(
                modality=header.modality,
                split=header.meta.get("split"),
                items=header.count,
                kind=header.kind,
                recall_at_10=recall,
                status="ok",
            )
        rows.append(row)
    if as_json:
        console.print_json(rows)
        return
    console.table(
        Table(
            f"indexes of {ref.path}",
            ["file", "modality", "split", "items", "kind", "recall@10", "status"],
            [
                [
                    r["file"],
                    r.get("modality"),
                    r.get("split"),
                    r.get("items"),
                    r.get("kind"),
                    r.get("recall_at_10"),
                    r["status"],
                ]
                for r in rows
            ],
        )
    )


def _index_path(ref_path: Path, target: str, split: str) -> str:
    """The index file ``--in`` names (a modality's default index, or a file), its pin (``@sha256:HEX``) kept."""
    from alice.search.indexes import PIN, default_index_path, split_pin

    file, digest = split_pin(target)
    if not (str(file).endswith(".safetensors") or "/" in str(file) or file.is_dir()):
        file = default_index_path(ref_path, str(file), split)
    return f"{file}{PIN}{digest}" if digest else str(file)


def search_command(
    path: Path = typer.Argument(..., help="Reference folder."),
    query: str = typer.Argument(..., help="Text, or an image or audio file."),
    target: str = typer.Option(
        ...,
        "--in",
        help="Where to search: an adapter with an index (e.g. image), or an index file; FILE@sha256:HEX pins the "
        "file to the sha256 `alice index build` printed.",
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
    split: str = typer.Option("test", "--split", help="The index's split, when --in names an adapter."),
    exact: bool = typer.Option(False, "--exact", help="Scan every item even when the index is approximate."),
    device: Optional[str] = Device,
    expect_digest: Optional[str] = ExpectDigest,
    as_json: bool = Json,
) -> None:
    """Search an index with a query of another modality; with --replace, search for the edited query."""
    from alice.api import Space
    from alice.search import query as q

    replacement = q.parse_replacement(replace) if replace else None
    space = Space.load(path, device or "cpu", expect_digest)
    index = q.open_index(space, _index_path(space.path, target, split))
    name, z = q.encode_query(space, query, source)
    result: dict[str, Any] = {"query": query, **q.search(space, index, z, name, k, replacement, exact)}
    for warning in result["warnings"]:
        console.warn(warning)
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
    # an item is shown as what it is: its text, the file it was read from, else its row (and scene)
    columns = ["rank", "score", "labels", "text" if index.texts else "file" if index.files else "item"]
    console.table(
        Table(
            f"top {len(result['results'])} of {index.count:,} {index.modality} items",
            columns,
            [
                [
                    r["rank"],
                    r["score"],
                    ", ".join(r["labels"]),
                    r.get("text") or r.get("file") or f"#{r['row']}" + (f" ({r['pair_id']})" if "pair_id" in r else ""),
                ]
                for r in result["results"]
            ],
            what,
        )
    )
