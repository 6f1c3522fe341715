"""An example third-party ALICE plugin: a line-scan sensor reading the built-in digit scenes.

Registers the data set ``digits-scanner`` (modality ``scanner``), the backbone
``scanner-stats`` and a folder of recipes (``digits-scanner``, ``tiny-scanner``),
so that ``alice modality add scanner --reference artifacts/digits-image`` works.

Only ``alice.plugin`` is imported here: numpy, torch and the digits plugin
are imported inside the hooks, so loading plugins (``alice --help``) stays fast.
"""

from pathlib import Path

from alice.plugin import BackboneRegistrar, DataSetRegistrar, RecipeFolderRegistrar, hookimpl

RECIPES = Path(__file__).parent / "recipes"


@hookimpl
def alice_register_datasets(registrar: DataSetRegistrar) -> None:
    from alice_scanner.datasets import DigitsScanner

    registrar.dataset(DigitsScanner)


@hookimpl
def alice_register_backbones(registrar: BackboneRegistrar) -> None:
    from alice_scanner.backbones import ScannerStats

    registrar.backbone(ScannerStats)


@hookimpl
def alice_register_recipe_dirs(registrar: RecipeFolderRegistrar) -> None:
    registrar.recipe_folder(RECIPES)
