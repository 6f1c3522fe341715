"""The two jobs users run: build a reference space (stage 1), add a modality to one (stage 2)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from alice import console, distributed
from alice.artifacts import modelcard
from alice.artifacts.format.layout import (
    ADAPTERS_FOLDER,
    CURVE_FILE,
    HISTORY_FILE,
    SEARCH_MEAN,
    STATISTICS_PREFIX,
)
from alice.artifacts.format.manifests import AdapterManifest, BackboneRecord, DataRecord, LabelRecord, ReferenceManifest
from alice.artifacts.integrity.describe import check_new_adapter
from alice.artifacts.loaded import ReferenceSpace
from alice.artifacts.publish import AdapterWeights, now, reference_files, refuse_existing, update_space, write_space
from alice.config.training import Recipe
from alice.core.alignment import STATISTICS, AlignmentTarget, LatentStatistics
from alice.core.interventions import Intervention, prompt_sentences
from alice.core.metrics import classification_metrics, youden_thresholds
from alice.core.modules import Classifier, Decoder, Encoder
from alice.data.features import extract_features
from alice.data.loading import ModalityData, make_backbone
from alice.distributed import pick_device
from alice.errors import AliceError
from alice.files import check_writable, recover
from alice.plugin.manager import get_registry
from alice.plugin.tracker import Run
from alice.train import checkpoints
from alice.train.history import Trackers, history_bytes, job_settings
from alice.train.loop import Checkpointing, History, training_summary
from alice.train.preparation import (
    check_memory,
    check_modality,
    checkpointing_for,
    interrupted,
    load_data,
    recipe_table,
)
from alice.train.stages import AdapterTrainer, ReferenceTrainer


def _intervention_from_recipe(recipe: Recipe, vocabulary: list[str], device: torch.device) -> Intervention:
    spec = recipe.intervention
    design = get_registry().intervention(spec.design)
    settings = dict(spec.settings)
    prompt_backbone = None
    if spec.prompt_backbone is not None:
        prompt_backbone, plugin = make_backbone(spec.prompt_backbone)
        if not prompt_backbone.reads_text:
            raise AliceError(f"intervention.prompt_backbone {prompt_backbone.name!r} does not read text")
        settings.setdefault("prompt_dim", prompt_backbone.feature_dim)
    module = design(len(vocabulary), recipe.model.latent_dim, **settings)  # a bad setting: one line (the guard)
    if module.uses_prompts:
        if prompt_backbone is None:
            raise AliceError(
                f"intervention design {spec.design!r} is conditioned on text: set [intervention.prompt_backbone] "
                'in the recipe (for example name = "minilm"), or condition = "onehot"'
            )
        sentences = prompt_sentences(vocabulary, module.num_templates)
        console.info(f"embedding {len(sentences)} intervention prompts with {prompt_backbone.name}")
        emb = extract_features(
            prompt_backbone,
            sentences,
            dataset_identity={
                "name": "intervention-prompts",
                "sentences": sentences[:3],
                "n": len(sentences),
                "vocab": vocabulary,
            },
            split="prompts",
            device=device,
            plugin=plugin,
        )
        C, T = len(vocabulary), module.num_templates
        module.set_prompt_embeddings(emb.view(C, C, T, -1))
    return module


@torch.no_grad()
def _train_latents(data: ModalityData, encoder: Encoder, chunk: int = 8192) -> torch.Tensor:
    x = data.features["train"]
    return torch.cat([encoder(x[lo : lo + chunk]).cpu() for lo in range(0, x.shape[0], chunk)])


def _latent_statistics(data: ModalityData, encoder: Encoder) -> LatentStatistics:
    """Moments of the reference modality's train latents, stored in the reference for stage 2's alignment."""
    return LatentStatistics.of(_train_latents(data, encoder), data.labels["train"])


def statistics_record(statistics: LatentStatistics) -> dict:
    """reference.json's description of the statistics stored in reference.safetensors."""
    return {
        "of": "the reference modality's latents E(x) of its train split, after training",
        "samples": int(statistics.count),
        "tensors": {f"{STATISTICS_PREFIX}.{n}": list(getattr(statistics, n).shape) for n in STATISTICS},
        "use": "stage 2's unpaired alignment (recipe table [alignment]; docs/how-it-works.md"
        "#stage-2-optionally-unpaired-geometric-alignment-and-search-latents)",
    }


@torch.no_grad()
def _thresholds_and_metrics(data: ModalityData, encoder: Encoder, classifier: Classifier) -> tuple[np.ndarray, dict]:
    annotated = data.mapping.annotated
    probs = torch.sigmoid(classifier(encoder(data.features["val"]))).cpu().numpy()
    labels = data.labels["val"].cpu().numpy()
    thresholds = youden_thresholds(probs, labels, annotated)
    return thresholds, classification_metrics(probs, labels, thresholds, annotated)


def _adapter_weights(
    name: str,
    recipe: Recipe,
    data: ModalityData,
    modules: tuple[Encoder, Decoder],
    train_mean: torch.Tensor,
    thresholds: np.ndarray,
    training: dict,
    metrics: dict,
    history: bytes | None = None,
) -> AdapterWeights:
    """An adapter's weights, manifest and history; ``train_mean``: its mean train latent, kept when search centres
    on it."""
    manifest = _adapter_manifest(name, recipe, data, thresholds, training, metrics)
    a = recipe.alignment
    if recipe.stage == "modality" and a.weight > 0:
        manifest.latent_alignment = {"loss": a.loss, "weight": a.weight, "toward": "the reference's latent statistics"}
    search_mean = train_mean if a.centre else None
    if a.centre or a.project:
        manifest.search = {"centre": a.centre, "project": a.project}
        if a.centre:
            manifest.search["mean"] = f"{SEARCH_MEAN}: this modality's mean train latent"
        if a.project:
            manifest.search["subspace"] = "the reference's label subspace, from its latent statistics"
    return AdapterWeights(*modules, data.mean, data.std, manifest, search_mean, history)


def _adapter_manifest(
    name: str, recipe: Recipe, data: ModalityData, thresholds: np.ndarray, training: dict, metrics: dict
) -> AdapterManifest:
    standardised = recipe.model.standardise_features
    registry = get_registry()
    return AdapterManifest(
        name=name,
        modality=data.modality,
        recipe=recipe.name,
        created=now(),
        data=DataRecord(recipe.data.dataset, recipe.data.options, data.dataset.vocabulary),
        backbone=BackboneRecord(
            recipe.backbone.name,
            recipe.backbone.options,
            data.backbone.identity(),
            data.feature_dim,
            "(x - normalisation.mean) / normalisation.std"
            + (
                ", per-dimension statistics of the train split"
                if standardised
                else ", mean 0 and std 1 (features used as they are)"
            ),
        ),
        labels=LabelRecord(
            recipe.labels.mapper,
            recipe.labels.aliases,
            data.mapping.mapping,
            [c for c, a in zip(data.mapping.reference, data.mapping.annotated) if a],
        ),
        encoder_hidden=recipe.model.encoder_hidden,
        thresholds=[round(float(v), 6) for v in thresholds],
        training=training,
        metrics={"val": metrics},
        samples={split: int(x.shape[0]) for split, x in data.features.items()},
        plugins={
            "dataset": registry.origin("dataset", recipe.data.dataset),
            "backbone": registry.origin("backbone", recipe.backbone.name),
        },
    )


def _job_history(job: str, name: str, recipe: Recipe, history: History) -> bytes:
    t = recipe.training
    return history_bytes(job_settings(job, name, t.steps, history.log_every, t.eval_every), history.records)


def _run(job: str, name: str, recipe: Recipe, space: dict, folder: Path) -> Run:
    return Run(job, name, space, recipe_table(recipe), recipe.training.steps, label=f"{folder.name}/{name}")


def _processes() -> str:
    n = distributed.world_size()
    return f", {n} processes, global batch split evenly" if n > 1 else ""


def _done(path: Path, metrics: dict, history: History, through: str, digest: str) -> None:
    console.info(
        f"wrote {path} (val AUROC {metrics['auroc']:.3f}{through}, {history.seconds:.0f} s of training); "
        f"space digest {digest}"
    )


def build_reference(
    recipe: Recipe, out: Path, overwrite: bool = False, device_name: str | None = None, resume: bool = False
) -> ReferenceSpace:
    """Stage 1: train E, D, C, M on the recipe's modality; write the reference folder (with that modality's adapter)."""
    if recipe.stage != "reference":
        raise AliceError(f"recipe {recipe.name!r} is a {recipe.stage} recipe; use `alice modality add` with it")
    out = Path(out).absolute()
    recover(out)  # a replacement killed half-way: the previous space goes back first
    refuse_existing(out, overwrite)  # fail before any work, not after training
    check_modality(recipe)
    trackers = Trackers.of(recipe.logging.trackers, recipe.logging.dir)  # an unknown tracker: refused before work
    folder = checkpoints.checkpoint_folder(out)
    try:
        with distributed.session(pick_device(device_name or recipe.training.device)) as device:
            return _build_reference(recipe, out, overwrite, device, resume, folder, trackers)
    except KeyboardInterrupt:
        raise interrupted(folder) from None


def _build_reference(
    recipe: Recipe, out: Path, overwrite: bool, device: torch.device, resume: bool, folder: Path, trackers: Trackers
) -> ReferenceSpace:
    distributed.batch_slice(recipe.training.batch_size)  # refuse an uneven split before any work
    checkpointing = checkpointing_for(recipe, folder, resume, overwrite, "reference")
    console.info(f"building reference space {recipe.name!r} on {device}{_processes()}")
    data = load_data(recipe, None, device)
    check_memory(recipe, data, device)
    vocab = data.dataset.vocabulary
    torch.manual_seed(recipe.training.seed)  # M's initial weights, like E, D, C's, follow the seed
    intervention = _intervention_from_recipe(recipe, vocab, device)
    m = recipe.model
    trainer = ReferenceTrainer(data, intervention, m, recipe.training, device)
    with trackers.running(_run("reference build", data.modality, recipe, {"path": str(out)}, out)):
        encoder, decoder, classifier, intervention, history = trainer.train(checkpointing, trackers)
        space = _write_reference(
            recipe, out, overwrite, device, data, (encoder, decoder, classifier, intervention), history, checkpointing
        )
        trackers.end({"status": "finished", "digest": space.digest, "metrics": space.manifest.metrics})
    return space


def _write_reference(
    recipe: Recipe,
    out: Path,
    overwrite: bool,
    device: torch.device,
    data: ModalityData,
    modules: tuple[Encoder, Decoder, Classifier, Intervention],
    history: History,
    checkpointing: Checkpointing,
) -> ReferenceSpace:
    encoder, decoder, classifier, intervention = modules
    m, vocab = recipe.model, data.dataset.vocabulary
    thresholds, metrics = _thresholds_and_metrics(data, encoder, classifier)
    training = training_summary(recipe.training, history, device)
    statistics = _latent_statistics(data, encoder)
    manifest = ReferenceManifest(
        name=recipe.name,
        family=recipe.family,
        created=now(),
        reference_modality=data.modality,
        vocabulary=vocab,
        latent_dim=m.latent_dim,
        classifier_hidden=m.classifier_hidden,
        classifier_dropout=m.classifier_dropout,
        design=recipe.intervention.design,
        design_settings=intervention.settings(),
        recipe=recipe_table(recipe),
        training=_from_root(training, data.modality),
        metrics={"val": metrics},
        statistics=statistics_record(statistics),
        plugins={"intervention": get_registry().origin("intervention", recipe.intervention.design)},
    )
    adapter = _adapter_weights(
        data.modality,
        recipe,
        data,
        (encoder, decoder),
        statistics.mean,
        thresholds,
        training,
        metrics,
        _job_history("reference build", data.modality, recipe, history),
    )
    if distributed.is_main():  # one writer; the others wait for the artifact
        save_reference(out, classifier, intervention, manifest, [adapter], overwrite, statistics)
        checkpoints.remove(checkpointing.folder)
    distributed.barrier()
    space = ReferenceSpace.load(out)
    _done(out, metrics, history, "", space.digest)
    return space


def _from_root(training: dict, adapter: str) -> dict:
    """The training record as reference.json holds it: its history is in the reference modality's adapter folder."""
    where = f"{ADAPTERS_FOLDER}/{adapter}/"
    return {**training, "history": {**training["history"], "file": where + HISTORY_FILE, "curve": where + CURVE_FILE}}


def save_reference(
    out: Path,
    classifier: Classifier,
    intervention: Intervention,
    manifest: ReferenceManifest,
    adapters: list[AdapterWeights],
    overwrite: bool = False,
    statistics: LatentStatistics | None = None,
) -> str:
    """Write a reference folder, its adapters and their model cards as one atomic step; returns the weights' sha256.

    ``statistics``: the reference modality's latent statistics to store beside C_ref and M_ref (a
    loaded reference's ``.statistics``); the manifest's ``statistics`` record is made to match them.
    """
    manifest = replace(manifest, statistics=statistics_record(statistics) if statistics is not None else None)
    files, digest = reference_files(classifier, intervention, manifest, adapters, statistics)
    files.update(modelcard.cards(files, design_description=intervention.description))
    write_space(out, files, overwrite=overwrite)
    return digest


def _alignment(
    reference: ReferenceSpace, recipe: Recipe, data: ModalityData, device: torch.device
) -> tuple[AlignmentTarget, float] | None:
    """Stage 2's L_align toward the reference's latent statistics and its weight; None for the paper's stage 2."""
    a = recipe.alignment
    if (a.weight or a.project) and reference.statistics is None:
        raise AliceError(
            f"reference {reference.path} stores no latent statistics (built before ALICE stored them), so "
            "alignment.weight and alignment.project must be 0 for it: rebuild the reference, or add "
            "--set alignment.weight=0 --set alignment.project=0"
        )
    if a.weight == 0:
        return None
    console.info(
        f"stage 2 with unpaired alignment: {a.loss} toward the reference's latent statistics, weight {a.weight}"
    )
    return AlignmentTarget(reference.statistics, data.annotated, a.loss, device), a.weight


def add_modality(
    reference_dir: Path,
    recipe: Recipe,
    name: str | None = None,
    overwrite: bool = False,
    device_name: str | None = None,
    resume: bool = False,
) -> Path:
    """Stage 2: train only this modality's E and D against the frozen C_ref and M_ref, and add its adapter folder."""
    if recipe.stage != "modality":
        raise AliceError(f"recipe {recipe.name!r} is a {recipe.stage} recipe; use `alice reference build` with it")
    name = name or recipe.modality
    check_new_adapter(Path(reference_dir), name, overwrite)  # before anything loads
    reference = ReferenceSpace.load(reference_dir)
    existing = reference.path / ADAPTERS_FOLDER / name
    if existing.exists():
        refuse_existing(existing, overwrite, "adapter")
    check_writable(reference.path.absolute())  # the space is published anew beside its old version
    check_modality(recipe)
    trackers = Trackers.of(recipe.logging.trackers, recipe.logging.dir)  # an unknown tracker: refused before work
    folder = checkpoints.adapter_checkpoint_folder(reference.path, name)
    try:
        with distributed.session(pick_device(device_name or recipe.training.device)) as device:
            return _add_modality(reference, recipe, name, overwrite, device, resume, folder, trackers)
    except KeyboardInterrupt:
        raise interrupted(folder) from None


def _add_modality(
    reference: ReferenceSpace,
    recipe: Recipe,
    name: str,
    overwrite: bool,
    device: torch.device,
    resume: bool,
    folder: Path,
    trackers: Trackers,
) -> Path:
    distributed.batch_slice(recipe.training.batch_size)
    path = reference.path / ADAPTERS_FOLDER / name
    checkpointing = checkpointing_for(recipe, folder, resume, overwrite, f"modality:{reference.sha256}")
    console.info(f"adding modality {name!r} to {reference.path} on {device} (C_ref and M_ref frozen){_processes()}")
    data = load_data(recipe, reference.vocabulary, device)
    check_memory(recipe, data, device, reference.latent_dim)
    alignment = _alignment(reference, recipe, data, device)
    trainer = AdapterTrainer(
        data, reference.classifier, reference.intervention, recipe.model, recipe.training, device, alignment
    )
    space = {"path": str(reference.path), "reference_sha256": reference.sha256, "digest": reference.digest}
    with trackers.running(_run("modality add", name, recipe, space, reference.path)):
        encoder, decoder, history = trainer.train(checkpointing, trackers)
        metrics, digest = _write_adapter(
            reference, recipe, name, data, (encoder, decoder), history, device, checkpointing
        )
        trackers.end({"status": "finished", "digest": digest, "metrics": {"val": metrics}})
    _done(path, metrics, history, " through C_ref", digest)
    return path


def _write_adapter(
    reference: ReferenceSpace,
    recipe: Recipe,
    name: str,
    data: ModalityData,
    modules: tuple[Encoder, Decoder],
    history: History,
    device: torch.device,
    checkpointing: Checkpointing,
) -> tuple[dict, str]:
    """Write the new adapter into the space (rank 0); its validation metrics and the space's new digest."""
    encoder, decoder = modules
    thresholds, metrics = _thresholds_and_metrics(data, encoder, reference.classifier)
    training = training_summary(recipe.training, history, device)
    train_mean = _train_latents(data, encoder).mean(0)
    adapter = _adapter_weights(
        name,
        recipe,
        data,
        modules,
        train_mean,
        thresholds,
        training,
        metrics,
        _job_history("modality add", name, recipe, history),
    )
    digest = ""
    if distributed.is_main():
        files = adapter.files(reference.sha256, reference.reference_digest)
        files.update(modelcard.cards(files, reference=reference.manifest))  # its README.md model card
        prefix = f"{ADAPTERS_FOLDER}/{name}"
        changes = {f"{prefix}/{rel}": v for rel, v in files.items()}
        digest = update_space(reference.path, changes, replace_folders=(prefix,)).digest
        checkpoints.remove(checkpointing.folder)
    distributed.barrier()
    return metrics, digest
