"""COCO (Lin et al. 2014) read with pycocotools: ``coco-image`` and ``coco-text``.

Also adds ``alice coco sample``, which writes a small real COCO-format data set
(photos shipped in scikit-image, annotated by hand) to try the pipeline offline.
"""

from alice.plugin import DataSetRegistrar, hookimpl


@hookimpl
def alice_register_datasets(registrar: DataSetRegistrar) -> None:
    # by name and place: the module (and pycocotools) is imported when a data set is first used
    registrar.dataset("coco-image", "alice_plugins.coco.datasets:CocoImage")
    registrar.dataset("coco-text", "alice_plugins.coco.datasets:CocoText")


@hookimpl
def alice_register_commands(cli):
    from alice_plugins.coco.cli import app

    cli.add_typer(app, name="coco")
