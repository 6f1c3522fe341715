"""``alice report``: one HTML page about a reference space, with PNG figures beside it.

The page (``<reference>/report/index.html`` by default) holds:

1. what the space is (vocabulary, modalities, backbones, hashes), from the manifests;
2. the evaluation tables of ``eval.json`` (Tables 1-3 of ``alice eval``; run first if missing or stale);
3. a 2-D projection of the shared latent space: test items of every modality, coloured by label
   and marked by modality (t-SNE from scikit-learn by default, or PCA), and one small panel per
   class showing which items hold it (the labels are multi-label, so one colour per point
   cannot tell the whole story);
4. a grid of search results: test queries of each modality, their top hits in the other
   modalities shown as their backbones preview them (picture, sound or text), and
   counterfactual queries ("replace i with j" by M_ref) beside the plain ones.

Everything is computed from the artifact and the cached test features; nothing is downloaded
and the page needs no network (no scripts, fonts or styles from elsewhere). The folder is
written beside its final place and renamed into it, so an old report is replaced whole or
not at all.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alice import console
from alice._version import __version__
from alice.api import Space
from alice.artifacts.format.layout import EVAL_FILE, REPORT_FOLDER
from alice.artifacts.integrity.describe import open_space
from alice.artifacts.loaded import ReferenceSpace
from alice.artifacts.publish import inside, scratch_beside, update_space
from alice.config.evaluation import EvalSpec
from alice.config.report import ReportSpec
from alice.core.similarity import top_k
from alice.distributed import pick_device
from alice.errors import AliceError
from alice.evaluation.run import evaluate, save_evaluation
from alice.evaluation.tables import evaluation_tables
from alice.files import check_writable, publish_folder, staging_folder, write_json
from alice.reading import read_json
from alice.report.curves import draw, labels_for, matched
from alice.report.figures import PROJECTIONS, Items, projection_figures
from alice.report.previews import Gallery
from alice.tables import Table, cell

REPORT_RECORD = "report.json"


# --------------------------------------------------------------------------- data


def _sample(reference: ReferenceSpace, name: str, n: int, seed: int, device: torch.device) -> Items:
    adapter = reference.load_adapter(name).to(device)
    data = adapter.load_data(("test",), device)
    total = data.features["test"].shape[0]
    rows = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
    with torch.no_grad():
        z = adapter.encode(data.features["test"][torch.as_tensor(rows, device=device)])
    inputs = data.inputs("test")
    labels = data.labels["test"].cpu().numpy()[rows] > 0.5
    search = adapter.search_latents(z).cpu()
    return Items(name, z.cpu(), labels, [inputs[int(i)] for i in rows], data.mapping.annotated, search)


def _evaluation(reference: ReferenceSpace, device: torch.device, seeds: int) -> dict[str, Any]:
    """eval.json when it describes this reference and its adapters; otherwise a fresh evaluation.

    A missing eval.json is written (as `alice eval` would); one that describes something else
    is left as it is (it may hold paired rows a plain evaluation would not recompute) and the
    report shows a fresh evaluation instead.
    """
    path = reference.path / EVAL_FILE
    stored: Any = None
    if path.is_file():
        try:
            stored = read_json(path)
        except AliceError:
            stored = None
    if (
        isinstance(stored, dict)
        and isinstance(stored.get("modalities"), dict)
        and isinstance(stored.get("reference"), dict)
    ):
        if stored["reference"].get("sha256") == reference.sha256 and set(stored["modalities"]) == set(
            reference.adapter_names()
        ):
            for key, table in (
                ("counterfactual", "Table 3 (counterfactual search)"),
                ("gap", "Table 4 (the modality gap)"),
            ):
                if key not in stored:
                    console.warn(f"eval.json predates {table}: run `alice eval` again to add it to the report")
            return stored
    spec = EvalSpec(device=str(device), seeds=seeds)
    if path.exists():
        console.warn(
            f"{path} does not describe this reference and its adapters: the report shows a fresh evaluation and "
            "leaves the file as it is"
        )
        return evaluate(reference, spec)
    console.info("no eval.json yet: running `alice eval` first")
    report = evaluate(reference, spec)
    save_evaluation(reference, report)
    return report


# --------------------------------------------------------------------------- the page


def html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>" for row in t.rows)
    caption = t.title + (f": {t.note}" if t.note else "")
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _names(labels: np.ndarray, vocab: list[str]) -> str:
    return ", ".join(vocab[c] for c in np.flatnonzero(labels)) or "no label"


def _search_grid(
    space: Space, items: dict[str, Items], gallery: Gallery, queries: int, k: int, seed: int
) -> tuple[str, list[dict[str, Any]]]:
    """Rows of (query, its top-k in each other modality), plain and counterfactual."""
    vocab = space.vocabulary
    rng = np.random.default_rng(seed)
    out, record = [], []
    for qname, q in items.items():
        for target, g in items.items():
            if target == qname:
                continue
            both = q.annotated & g.annotated
            for row in rng.choice(len(q.z), size=min(queries, len(q.z)), replace=False):
                row = int(row)
                present = [c for c in np.flatnonzero(q.labels[row]) if both[c]]
                absent = [c for c in range(len(vocab)) if both[c] and not q.labels[row, c]]
                edits: list[tuple[str, torch.Tensor, str]] = [("plain", q.search[row : row + 1], "")]
                if present and absent:
                    old, new = int(rng.choice(present)), int(rng.choice(absent))
                    edited = space.intervene(q.z[row : row + 1], (old, new), through=qname)
                    edited = space.search_latents(qname, edited).cpu()
                    edits.append(("counterfactual", edited, f"replace {vocab[old]} with {vocab[new]}"))
                for kind, z, what in edits:
                    _, hits = top_k(z, g.search, k)
                    cells = [gallery.html(qname, row, q.inputs[row], f"{qname}: {_names(q.labels[row], vocab)}")]
                    cells.append(f'<div class="edit">{html.escape(what) + " →" if what else ""}</div>')
                    for h in hits[0].tolist():
                        cells.append(gallery.html(target, h, g.inputs[h], _names(g.labels[h], vocab)))
                    out.append(
                        f'<div class="row {kind}"><span class="tag">{kind}: {html.escape(qname)} → '
                        f"{html.escape(target)}</span>{''.join(cells)}</div>"
                    )
                    record.append(
                        {
                            "query": qname,
                            "gallery": target,
                            "row": row,
                            "kind": kind,
                            "edit": what,
                            "hits": hits[0].tolist(),
                        }
                    )
    return "\n".join(out), record


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.row { display: flex; align-items: flex-start; gap: 0.6em; margin: 0.5em 0; padding: 0.4em;
       border-bottom: 1px solid #eee; }
.row.counterfactual { background: #f6f8ff; }
.tag { width: 11em; flex: none; font-size: 0.8em; color: #555; }
.edit { align-self: center; font-size: 0.85em; color: #1a4; width: 7em; }
figure { margin: 0; width: 110px; font-size: 0.75em; }
figure img { display: block; max-width: 100px; image-rendering: pixelated; border: 1px solid #ddd; }
figure audio { width: 100px; height: 24px; }
p.text { margin: 0; padding: 0.3em; background: #fafafa; border: 1px solid #ddd; min-height: 3em;
         white-space: pre-wrap; overflow-wrap: anywhere; }
img.figure { max-width: 100%; border: 1px solid #ddd; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


def _curves_section(spaces: list[Path], folder: Path) -> str:
    """One figure per training job of each adapter (overlaid with the other spaces' same jobs), as HTML."""
    for other in spaces[1:]:
        open_space(Path(other))  # a space compared with is checked as any space read is
    figures = matched(spaces)
    if not figures:
        return "<p>No training history recorded (a space written before ALICE recorded one).</p>"
    styles = f", one line style per space: {html.escape(' vs '.join(labels_for(spaces)))}" if len(spaces) > 1 else ""
    parts = [
        f"<p>From each adapter's <code>history.jsonl</code>: the loss terms (log scale) and the validation figures "
        f"against steps{styles}.</p>"
    ]
    for c in figures:
        draw(c, folder / c.file)
        alt = html.escape(f"training curves of {c.adapter}: {c.title}")
        parts.append(f'<img class="figure" src="{c.file}" alt="{alt}">')
    return "\n".join(parts)


def build_report(reference_path: Path, spec: ReportSpec | None = None) -> Path:
    """Write the report folder (index.html, PNG figures, items/ and report.json); return the HTML file."""
    spec = spec or ReportSpec()
    if spec.projection not in PROJECTIONS:
        raise AliceError(f"unknown projection {spec.projection!r} ({' or '.join(PROJECTIONS)})")
    per_modality, projection, k, seed = spec.per_modality, spec.projection, spec.k, spec.seed
    reference = ReferenceSpace.load(reference_path)
    names = reference.adapter_names()
    if not names:
        raise AliceError(f"reference {reference.path} has no adapters to report on")
    final = Path(spec.out) if spec.out is not None else reference.path / REPORT_FOLDER
    final = final.resolve()
    if final.exists() and not is_report(final) and (not final.is_dir() or any(final.iterdir())):
        raise AliceError(f"{final} exists and is not an ALICE report; choose another --out")
    rel = inside(final, reference.path)  # a report inside the space comes with the space's next version
    if rel is not None and rel != REPORT_FOLDER:
        raise AliceError(f"{final} is inside reference {reference.path}: a report there goes in {REPORT_FOLDER}/")
    check_writable(final)
    device = pick_device(spec.device)
    evaluation = _evaluation(reference, device, spec.seeds)
    space = Space.load(reference.path, device)
    vocab = space.vocabulary
    console.info(f"sampling up to {per_modality} test items of each adapter")
    items = {name: _sample(reference, name, per_modality, seed + i, device) for i, name in enumerate(names)}
    with staging_folder(final) if rel is None else scratch_beside(reference.path) as tmp:
        console.info(f"projecting {sum(len(it.z) for it in items.values())} latents ({projection})")
        proj = projection_figures(list(items.values()), vocab, tmp, projection, seed)
        curves = _curves_section([reference.path, *spec.compare], tmp)
        console.info("search examples")
        grid, record = _search_grid(space, items, Gallery(tmp, space.preview), spec.queries, k, seed)
        m = reference.manifest
        title = html.escape(m.name or reference.path.name)
        adapters = Table(
            "Modalities",
            ["adapter", "modality", "backbone", "data set", "sha256"],
            [
                [n, a.manifest.modality, a.manifest.backbone.name, a.manifest.data.dataset, a.sha256[:12] + "…"]
                for n, a in ((n, space.adapter(n)) for n in names)
            ],
        )
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ALICE report: {title}</title>
<style>{STYLE}</style></head><body>
<h1>ALICE report: {title}</h1>
<p>Reference space <code>{html.escape(str(reference.path))}</code>, sha256 <code>{reference.sha256[:16]}…</code>:
{len(vocab)} labels, latent {space.latent_dim}-d, intervention design <code>{html.escape(m.design)}</code>,
reference modality <code>{html.escape(space.reference_modality)}</code>.
Labels: {html.escape(", ".join(vocab[:80]))}{"…" if len(vocab) > 80 else ""}.</p>
{html_table(adapters)}
<h2>Evaluation</h2>
<p>From <code>eval.json</code> (written by <code>alice eval</code>), test splits.</p>
{"".join(html_table(t) for t in evaluation_tables(evaluation))}
<h2>Training</h2>
{curves}
<h2>The shared latent space</h2>
<p>{proj["points"]} test items ({", ".join(f"{len(it.z)} {n}" for n, it in items.items())}) projected to 2-D together;
colour: the item's first label in vocabulary order, marker: its modality.</p>
<img class="figure" src="latent-map.png"
     alt="2-D projection of the latent space, coloured by label, marked by modality">
<img class="figure" src="latent-by-class.png" alt="one panel per class: the items holding it">
<h2>Search</h2>
<p>Test queries and their top {k} in each other modality (exact cosine search over the sampled test items).
Counterfactual rows edit the query first with M_ref (through the query modality's decoder and encoder), then search.</p>
{grid}
<p><small>Written by alice {html.escape(__version__)} (<code>alice report</code>).</small></p>
</body></html>
"""
        (tmp / "index.html").write_text(page, encoding="utf-8")
        write_json(
            tmp / REPORT_RECORD,
            {
                "reference_sha256": reference.sha256,
                "projection": proj,
                "search": record,
                "per_modality": per_modality,
                "seed": seed,
            },
        )
        if (
            final.exists() and not is_report(final) and any(final.iterdir())
        ):  # checked again: it may have appeared meanwhile
            raise AliceError(f"{final} exists and is not an ALICE report; choose another --out")
        if rel is None:
            publish_folder(tmp, final, "report")
        else:
            made = {f"{REPORT_FOLDER}/{f.relative_to(tmp).as_posix()}": f for f in tmp.rglob("*") if f.is_file()}
            update_space(reference.path, made, replace_folders=(REPORT_FOLDER,))
    return final / "index.html"


def is_report(folder: Path) -> bool:
    """A folder `alice report` wrote: its report.json names a reference (an index.html alone is not enough)."""
    try:
        return isinstance(read_json(folder / REPORT_RECORD).get("reference_sha256"), str)
    except (AliceError, AttributeError):
        return False
