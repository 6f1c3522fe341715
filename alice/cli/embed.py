"""``alice embed``: latents of a split or of files into Parquet, for vector databases and streamed indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import Device, ExpectDigest, Overwrite


def embed_command(
    path: Path = typer.Argument(..., help="Reference folder."),
    modality: str = typer.Option(..., "--modality", "-m", help="The adapter that reads the items (e.g. image)."),
    out: Path = typer.Option(..., "--out", "-o", help="The Parquet file to write (….parquet)."),
    split: Optional[str] = typer.Option(
        None, "--split", help="A split of the adapter's own data set: train, val, test."
    ),
    data: Optional[str] = typer.Option(
        None, "--data", help="A recipe (name or TOML path) whose data set to embed instead: its --split (test)."
    ),
    files: Optional[list[Path]] = typer.Option(None, "--files", help="Files to embed instead (repeat the option)."),
    batch_size: int = typer.Option(1024, "--batch-size", min=1, help="Items embedded and written at once."),
    overwrite: bool = Overwrite,
    device: Optional[str] = Device,
    expect_digest: Optional[str] = ExpectDigest,
) -> None:
    """Write items' latents to Parquet: id, labels, text or file, and both latents (search and raw), named."""
    from alice.api import Space
    from alice.search.embed import embed_to_parquet

    space = Space.load(path, device or "cpu", expect_digest)
    written, rows = embed_to_parquet(space, modality, out, split, files, batch_size, overwrite, data)
    console.info(f"wrote {written}: {rows:,} {modality} items, columns search and latent of {space.latent_dim} floats")
