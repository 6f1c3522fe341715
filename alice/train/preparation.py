"""What a training job checks and prepares before its first step: the recipe against its data set, the
checkpoint folder, the data loaded, the model against the device's memory, and what Ctrl-C says."""

from __future__ import annotations

from pathlib import Path

import torch

from alice import distributed
from alice.config.training import Recipe
from alice.data.loading import ModalityData, load_modality, make_dataset
from alice.data.recipes import check_model_fits, model_parameters
from alice.errors import AliceError, Interrupted
from alice.files import recover
from alice.plugin.manager import get_registry
from alice.train import checkpoints
from alice.train.loop import Checkpointing


def check_modality(recipe: Recipe) -> None:
    """Before any extraction: the recipe's modality is its data set's (the instance's: an option or its files may
    say)."""
    holds = make_dataset(recipe.data).modality
    if holds != recipe.modality:
        raise AliceError(
            f"recipe {recipe.name!r} says modality {recipe.modality!r}, but data set {recipe.data.dataset!r} holds "
            f"{holds}"
        )


def checkpointing_for(recipe: Recipe, folder: Path, resume: bool, overwrite: bool, stage: str) -> Checkpointing:
    """Checkpoints in ``folder`` (beside the space); an interrupted run's checkpoint is kept unless asked otherwise."""
    recover(folder)  # a run killed while saving or removing a checkpoint left the previous one beside it
    settings = recipe_table(recipe)
    settings["training"] = {
        k: v for k, v in settings["training"].items() if k not in ("steps", "device", "eval_every", "checkpoint_every")
    }
    saved = checkpoints.saved_step(folder)
    if resume and saved is not None and saved > recipe.training.steps:
        raise AliceError(
            f"the checkpoint at {folder} is at step {saved}, beyond training.steps = {recipe.training.steps}: resume "
            f"with --steps {saved} or more, or pass --overwrite without --resume to start over"
        )
    if not resume and folder.exists():
        if not overwrite:
            raise AliceError(
                f"an interrupted run left a checkpoint at {folder}: pass --resume to continue it, or --overwrite to "
                "start over"
            )
        if distributed.is_main():
            checkpoints.remove(folder)
    distributed.barrier()  # every process has looked before rank 0 writes anything
    return Checkpointing(
        folder, recipe.training.checkpoint_every, resume, checkpoints.fingerprint({"stage": stage, **settings})
    )


def recipe_table(recipe: Recipe) -> dict:
    """The recipe as a manifest and a checkpoint record it: where a run is logged to is no part of it."""
    table = recipe.to_dict()
    table.pop("logging", None)
    return table


def load_data(recipe: Recipe, vocabulary: list[str] | None, device: torch.device) -> ModalityData:
    data = load_modality(
        recipe.modality_spec,
        vocabulary,
        device,
        normalisation="train" if recipe.model.standardise_features else "none",
        extract_batch_size=recipe.training.extract_batch_size,
    )
    n = int(data.features["train"].shape[0])
    if recipe.training.batch_size > n:  # before any training: a batch larger than the data is drawn with repeats
        raise AliceError(
            f"recipe {recipe.name!r}: training.batch_size {recipe.training.batch_size} is larger than the train split "
            f"({n} samples); use at most {n}"
        )
    return data


def intervention_parameters(recipe: Recipe, classes: int) -> int | None:
    """Parameters and buffers of the recipe's intervention, built on the meta device (nothing allocated); None
    when the design cannot be built there (its own construction says why, later)."""
    spec = recipe.intervention
    try:
        with torch.device("meta"):
            module = get_registry().intervention(spec.design)(classes, recipe.model.latent_dim, **spec.settings)
        return sum(t.numel() for t in (*module.parameters(), *module.buffers()))
    except Exception:
        return None


def check_memory(recipe: Recipe, data: ModalityData, device: torch.device, latent_dim: int | None = None) -> None:
    """Refuse a model whose training cannot fit the device's free memory, now that the feature size and the
    classes are known and before any module is built (the recipe's lower bound was checked when it was read)."""
    classes = len(data.mapping.reference)
    parameters = model_parameters(recipe, data.feature_dim, classes, latent_dim)
    extra = intervention_parameters(recipe, classes) if recipe.stage == "reference" else None
    check_model_fits(recipe, parameters + (extra or 0), distributed.memory_for(device), intervention=extra is not None)


def interrupted(folder: Path) -> Interrupted:
    """What Ctrl-C during a training run says: where --resume would go on from."""
    step = checkpoints.saved_step(folder)
    if step is None:
        return Interrupted("interrupted before the first checkpoint; nothing was written")
    return Interrupted(f"interrupted; --resume continues from step {step}")
