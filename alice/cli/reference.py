"""``alice reference``: build, show and list reference spaces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from alice import console
from alice.cli.options import ExpectDigest, Json, Overwrite, RunOptions, training_run
from alice.config.limits import IMPORT_LIMITS, ImportLimits
from alice.errors import AliceError
from alice.reading import parse_size, read_json, size_text
from alice.tables import Table

app = typer.Typer(help="Build and inspect frozen reference spaces.", no_args_is_help=True)

DEFAULT_ROOT = Path("artifacts")


@app.command("build")
@training_run
def build(
    recipe: str = typer.Argument(..., help="Recipe name (see `alice reference list`) or path to a TOML file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: artifacts/<recipe>)."),
    *,
    run: RunOptions,
) -> None:
    """Train a reference space (E, D, C, M on one modality) and write it as a frozen artifact."""
    from alice.data.recipes import load_recipe
    from alice.train.jobs import build_reference

    r = load_recipe(recipe, run.overrides())
    ref = build_reference(
        r, out or DEFAULT_ROOT / r.name, overwrite=run.overwrite, device_name=run.device, resume=run.resume
    )
    if run.as_json:
        console.print_json(
            {"path": str(ref.path), "sha256": ref.sha256, "digest": ref.digest, "metrics": ref.manifest.metrics}
        )


def _summary(path: Path) -> dict:
    """From the manifests, with every weights file re-hashed; no torch, no network built."""
    from alice.artifacts.integrity.describe import ReferenceFacts

    return ReferenceFacts.read(path).summary()


@app.command("show")
def show(path: Path = typer.Argument(..., help="Reference folder."), as_json: bool = Json) -> None:
    """Check a reference space's hashes and adapters against its manifests and describe them (`verify` loads them)."""
    from alice.cli.runs import job_rows

    s = _summary(path)  # every file checked against space.json, the histories among them
    s["history"] = job_rows(path)
    if as_json:
        console.print_json(s)
        return
    vocab = s["vocabulary"]
    console.table(
        Table(
            f"Reference space {s['name']} ({s['path']})",
            ["field", "value"],
            [
                ["digest", s["digest"]],
                ["reference digest", s["reference_digest"]],
                ["sha256", s["sha256"]],
                ["reference modality", s["reference_modality"]],
                ["vocabulary", f"{len(vocab)} classes: {', '.join(vocab[:12])}{' …' if len(vocab) > 12 else ''}"],
                ["latent size", s["latent_dim"]],
                ["intervention", f"{s['intervention']['design']} {json.dumps(s['intervention']['settings'])}"],
                ["trained", f"{s['training']['seconds']} s on {s['training']['device']}"],
                ["val AUROC", (s["metrics"] or {}).get("val", {}).get("auroc")],
                ["ALICE version", s["alice_version"]],
            ],
        )
    )
    console.table(
        Table(
            "Adapters",
            ["modality", "backbone", "feature size", "data set", "classes annotated", "val AUROC", "sha256"],
            [
                [
                    n,
                    a["backbone"],
                    a["feature_dim"],
                    a["dataset"],
                    f"{a['annotated_classes']} of {len(vocab)}"
                    + (f" (not: {', '.join(a['not_annotated'])})" if a["not_annotated"] else ""),
                    a["val_auroc"],
                    a["sha256"][:12] + "…",
                ]
                for n, a in s["adapters"].items()
            ],
        )
    )
    console.table(_training_table(s["history"]))


def _training_table(rows: list[dict]) -> Table:
    """Each training job's validation figure at its last step and at its best (from the adapters' histories)."""

    def at(v: dict | None, which: str) -> str:
        return f"{v[which]:.4f} at step {v[which + '_step']:,}" if v and isinstance(v[which], float) else "–"

    return Table(
        "Training (the curves: alice report, alice runs compare)",
        ["adapter", "job", "points", "validation figure", "final", "best"],
        [
            [
                r["adapter"],
                r["job"],
                r["points"],
                (r["validation"] or {}).get("figure", "–"),
                at(r["validation"], "final"),
                at(r["validation"], "best"),
            ]
            for r in rows
        ],
        note="" if rows else "no training history recorded (a space written before ALICE recorded one)",
    )


@app.command("list")
def list_references(
    root: Path = typer.Option(DEFAULT_ROOT, "--root", help="Folder to look for built reference spaces in."),
    as_json: bool = Json,
) -> None:
    """List reference recipes you can build, and reference spaces built under --root."""
    from alice.artifacts.format.layout import REFERENCE_MANIFEST
    from alice.artifacts.integrity.describe import adapter_names
    from alice.data.recipes import list_recipes
    from alice.plugin.manager import get_registry

    recipes = [
        {
            "name": r.name,
            "modality": r.modality,
            "dataset": r.data.dataset,
            "backbone": r.backbone.name,
            "plugin": get_registry().recipe_origin(r.source),  # whose recipe folder it is in
            "description": r.description,
            "source": r.source,
        }
        for r in list_recipes("reference")
    ]
    built = []
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if (p / REFERENCE_MANIFEST).is_file()):
            try:
                m = read_json(folder / REFERENCE_MANIFEST)
                adapters = adapter_names(folder)
                built.append(
                    {"path": str(folder), "name": m.get("name"), "modalities": adapters, "created": m.get("created")}
                )
            except (OSError, AliceError, AttributeError):
                built.append(
                    {
                        "path": str(folder),
                        "name": None,
                        "modalities": [],
                        "created": None,
                        "error": "unreadable manifest",
                    }
                )
    if as_json:
        console.print_json({"recipes": recipes, "built": built})
        return
    console.table(
        Table(
            "Reference recipes (alice reference build NAME)",
            ["name", "modality", "data set", "backbone", "plugin", "description"],
            [[r["name"], r["modality"], r["dataset"], r["backbone"], r["plugin"], r["description"]] for r in recipes],
        )
    )
    console.table(
        Table(
            f"Built reference spaces under {root}",
            ["path", "recipe", "modalities", "created"],
            [[b["path"], b["name"], ", ".join(b["modalities"]), b["created"]] for b in built],
        )
    )


@app.command("verify")
def verify(
    path: Path = typer.Argument(..., help="Reference folder."),
    rehash: bool = typer.Option(
        False,
        "--rehash",
        help="Record every file in space.json afresh (after documentation was edited by hand), "
        "after checking the weights against their manifests.",
    ),
    expect_digest: Optional[str] = ExpectDigest,
    as_json: bool = Json,
) -> None:
    """Re-hash every file against space.json and its manifest, and check each adapter belongs to this reference."""
    from alice.artifacts.integrity.verify import rehash as record_again
    from alice.artifacts.integrity.verify import verify_space

    if rehash:
        old, record = record_again(path)
        console.info(f"recorded {path / 'space.json'}: digest {record.digest} (was {old or 'unreadable'})")
    findings, inspection = verify_space(path, digest=expect_digest)
    bad = [f for f in findings if not f.ok]
    if as_json:
        digest = inspection.digest if inspection is not None else None
        console.print_json(
            {"path": str(path), "ok": not bad, "digest": digest, "findings": [f.to_dict() for f in findings]}
        )
    else:
        console.table(
            Table(
                f"Verification of {path}",
                ["item", "status", "detail"],
                [[f.item, "ok" if f.ok else "PROBLEM", f.detail] for f in findings],
            )
        )
    if bad:
        console.error(f"{len(bad)} problem(s) in {path}; first: {bad[0].item}: {bad[0].detail}")
        raise typer.Exit(1)


@app.command("export")
def export(
    path: Path = typer.Argument(..., help="Reference folder."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Archive file (default: <folder>.alice.tar.gz beside it)."
    ),
    overwrite: bool = Overwrite,
) -> None:
    """Pack a verified reference space and its adapters into one archive file."""
    from alice.artifacts.sharing import export_reference

    target = out or path.resolve().parent / f"{path.resolve().name}.alice.tar.gz"
    archive, digest = export_reference(path, target, overwrite)
    console.info(f"wrote {archive} (space digest {digest})")


_LIMITS = IMPORT_LIMITS


@app.command("import")
def import_(
    archive: Path = typer.Argument(..., help="Archive made by `alice reference export`."),
    into: Path = typer.Option(DEFAULT_ROOT, "--into", help="Folder to unpack the reference space into."),
    overwrite: bool = Overwrite,
    expect_digest: Optional[str] = ExpectDigest,
    max_entries: int = typer.Option(_LIMITS.entries, "--max-entries", min=1, help="Refuse an archive of more entries."),
    max_entry_size: str = typer.Option(
        size_text(_LIMITS.entry_size).replace(".0 ", ""), "--max-entry-size", help="Refuse a larger entry (e.g. 16G)."
    ),
    max_size: str = typer.Option(
        size_text(_LIMITS.total_size).replace(".0 ", ""), "--max-size", help="Refuse an archive unpacking to more."
    ),
    max_ratio: int = typer.Option(
        _LIMITS.ratio, "--max-ratio", min=1, help="Refuse more unpacked bytes per byte of archive (a gzip bomb)."
    ),
) -> None:
    """Unpack an archive safely (plain safetensors, JSON and README.md only), verify it, then put it in place."""
    from alice.artifacts.sharing import import_reference

    limits = ImportLimits(max_entries, parse_size(max_entry_size), parse_size(max_size), max_ratio)
    final, digest = import_reference(archive, into, overwrite, limits, expect_digest)
    console.info(f"imported {final} (verified; space digest {digest})")
