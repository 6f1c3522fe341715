"""A recipe's settings: the model, the intervention design, training, alignment and logging, and the recipe that
holds them with the modality it trains (read from TOML by :mod:`alice.data.recipes`). Plain dataclasses, their
defaults written once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from alice.config.modality import BackboneSpec, DataSpec, LabelSpec, ModalitySpec

#: what a recipe trains: a reference space, or a modality added to one
STAGES = ("reference", "modality")


@dataclass
class ModelSpec:
    latent_dim: int = 512  # size of the shared latent (reference recipes only)
    encoder_hidden: list[int] = field(default_factory=lambda: [1024, 1024])  # decoder mirrors it
    classifier_hidden: list[int] = field(default_factory=lambda: [1024, 1024])
    classifier_dropout: float = 0.1
    standardise_features: bool = True  # per-dimension (x - mean) / std from the train split; else x as is


@dataclass
class InterventionSpec:
    design: str = "nonlinear"  # a registered design: global, affine, nonlinear
    settings: dict[str, Any] = field(default_factory=dict)  # passed to the design
    prompt_backbone: BackboneSpec | None = None  # embeds "replace all i with j" for text-conditioned designs


@dataclass
class TrainingSpec:
    steps: int = 100_000
    batch_size: int = 1024
    lr: float = 1e-3
    amsgrad: bool = True
    rec_weight: float = 100.0  # weight of L_rec (the authors' code uses 100)
    cls_weight: float = 1.0
    sem_weight: float = 1.0
    seed: int = 0
    device: str = "auto"  # auto: cuda when present, else cpu
    eval_every: int = 1000  # validation losses every N steps (0: only at the end)
    log_every: int = 0  # a point of the run's history every N steps (0: about 250 points a run)
    checkpoint_every: int = 1000  # save a resumable checkpoint every N steps (0: never)
    extract_batch_size: int = 0  # 0: the backbone's own default
    # how the step runs (docs/performance.md); the defaults leave CPU arithmetic as it always was
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere; or "fp32", "bf16"
    optimizer: str = (
        "auto"  # Adam kernel. auto: fused on CUDA, torch's per-tensor loop on CPU; or "loop", "foreach", "fused"
    )
    compile: str = "off"  # torch.compile the step: "off", "default", "reduce-overhead" (CUDA graphs), "max-autotune"
    dropout_mask: str = "auto"  # classifier dropout masks. auto: "16bit" when compiled on CPU, else "torch"


#: what stage 2's L_align compares a new modality's latents with (alice.core.alignment.LOSSES)
ALIGNMENT_LOSSES = ("conditional-mean", "class-means", "moments")


@dataclass
class AlignmentSpec:
    """Unpaired geometric alignment with the reference's latents; weight 0 is the paper's method.

    Explained in docs/how-it-works.md#stage-2-optionally-unpaired-geometric-alignment-and-search-latents.

    Stage 2 adds ``weight * L_align``, pulling the new modality's latents toward the statistics
    of the reference modality's training latents stored in the reference, using only the new
    modality's own labels. ``centre`` and ``project`` shape the latents search compares (any
    stage; every modality of a space should share them): each modality's own mean taken out,
    and the directions outside the reference's label subspace weighed by ``1 - project``.
    """

    weight: float = 0.0  # weight of L_align in stage 2 (0: the paper's stage 2)
    loss: str = "conditional-mean"  # conditional-mean, class-means or moments (alice.core.alignment)
    centre: bool = False  # search: this modality's mean train latent taken out
    project: float = 0.0  # search: 0 the latent as it is, 1 only the reference's label subspace
    paper: bool = False  # true: the paper's plain method, whatever the settings above say (they are set to off)


@dataclass
class LoggingSpec:
    """Where a training run is reported as it runs (the ``[logging]`` table; ``--tracker``, ``--log-dir``)."""

    trackers: list[str] = field(default_factory=list)  # registered trackers ("tensorboard", a plugin's)
    dir: str = ""  # the folder they log under ("": runs, when trackers are named)


# the choices of each setting of how the step runs (alice.train.stages.FastPath)
FAST_PATH_CHOICES: dict[str, tuple[str, ...]] = {
    "precision": ("auto", "fp32", "bf16"),
    "optimizer": ("auto", "loop", "foreach", "fused"),
    "compile": ("off", "default", "reduce-overhead", "max-autotune"),
    "dropout_mask": ("auto", "torch", "16bit"),
}


@dataclass
class Recipe:
    name: str
    stage: str  # "reference" or "modality"
    modality: str
    data: DataSpec
    backbone: BackboneSpec
    family: str = ""  # reference and modality recipes of one family go together
    description: str = ""
    labels: LabelSpec = field(default_factory=LabelSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    intervention: InterventionSpec = field(default_factory=InterventionSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    alignment: AlignmentSpec = field(default_factory=AlignmentSpec)
    logging: LoggingSpec = field(default_factory=LoggingSpec)
    source: str = ""  # file it was read from

    @property
    def modality_spec(self) -> ModalitySpec:
        return ModalitySpec(self.data, self.backbone, self.labels)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        return d
