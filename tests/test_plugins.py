"""Plugins: built-ins arrive through entry points, broken plugins are isolated, clashes are named."""

from __future__ import annotations

import json
import os

import pytest
import torch
from cli_helpers import EchoBackbone, alice, refused

from alice.errors import AliceError
from alice.plugin import hookimpl
from alice.plugin import manager as plugins


@pytest.fixture
def registered():
    """Register plugin objects for one test; unregister them afterwards."""
    names = []

    def add(obj, name):
        plugins.register_plugin(obj, name)
        names.append(name)

    yield add
    for n in names:
        plugins.unregister_plugin(n)


def test_builtin_plugins_come_through_the_entry_point_group():
    reg = plugins.get_registry()
    for name in ("image", "text", "digits"):
        assert reg.plugins[name].source.startswith("entry point"), reg.plugins[name]
        assert reg.plugins[name].error is None
    assert {"pixels", "mobilenet-v2", "vit", "minilm", "bert"} <= set(reg.names("backbone"))
    assert {"digits-image", "digits-text"} <= set(reg.names("dataset"))
    assert {"global", "affine", "nonlinear"} <= set(reg.names("intervention"))


def test_a_plugin_whose_hook_raises_is_reported_and_the_rest_works(registered):
    class Broken:
        @hookimpl
        def alice_register_backbones(self, registrar):
            raise RuntimeError("boom")

    registered(Broken(), "broken-plugin")
    reg = plugins.get_registry()
    assert "broken-plugin" in reg.plugins
    assert "boom" in reg.plugins["broken-plugin"].error
    assert any("broken-plugin" in p for p in reg.problems)
    assert reg.backbone("pixels")  # everything else still there


def test_each_hook_is_handed_a_registrar_with_one_method_per_thing(registered, tmp_path):
    import inspect

    from alice.plugin import (
        BackboneRegistrar,
        DataSetRegistrar,
        InterventionRegistrar,
        LabelMapperRegistrar,
        RecipeFolderRegistrar,
        TrackerRegistrar,
        hookspecs,
    )

    def mapper(source, reference, aliases=None):
        return {s: s for s in source}

    class Typed:
        @hookimpl
        def alice_register_backbones(self, registrar: BackboneRegistrar) -> None:
            registrar.backbone(EchoBackbone)
            registrar.backbone("lazy-pixels", "alice_plugins.image.backbones:PixelBackbone")

        @hookimpl
        def alice_register_datasets(self, registrar: DataSetRegistrar) -> None:
            registrar.dataset("echo-digits", "alice_plugins.digits.datasets:DigitsImage")

        @hookimpl
        def alice_register_label_mappers(self, registrar: LabelMapperRegistrar) -> None:
            registrar.label_mapper("same", mapper)

        @hookimpl
        def alice_register_interventions(self, registrar: InterventionRegistrar) -> None:
            registrar.intervention("echo-global", "alice.core.interventions:GlobalIntervention")

        @hookimpl
        def alice_register_recipe_dirs(self, registrar: RecipeFolderRegistrar) -> None:
            registrar.recipe_folder(tmp_path)

        @hookimpl
        def alice_register_trackers(self, registrar: TrackerRegistrar) -> None:
            registrar.tracker("echo-board", "alice.plugin.tensorboard:TensorBoardTracker")

    registered(Typed(), "typed")
    reg = plugins.get_registry()
    assert reg.plugins["typed"].error is None
    assert reg.plugins["typed"].provides == {
        "backbone": ["echo", "lazy-pixels"],
        "dataset": ["echo-digits"],
        "label mapper": ["same"],
        "intervention": ["echo-global"],
        "recipe folder": [str(tmp_path)],
        "tracker": ["echo-board"],
    }
    assert reg.label_mapper("same")(["a"], ["a"]) == {"a": "a"} and tmp_path in reg.recipe_dirs()
    # every registration hook names its registrar's type, which an editor and a type checker read
    for hook, registrar in plugins.REGISTRARS.items():
        annotation = inspect.signature(getattr(hookspecs, hook)).parameters["registrar"].annotation
        assert annotation == registrar.__name__ and callable(getattr(registrar, registrar.method))


def test_the_old_register_callable_still_works_with_a_deprecation_warning(registered):
    from alice.plugin import AliceDeprecationWarning

    class Old:
        @hookimpl
        def alice_register_backbones(self, register):
            register(EchoBackbone)

        @hookimpl
        def alice_register_label_mappers(self, register):
            register("old-mapper", "alice.plugin.defaults:map_by_name")

    with pytest.warns(AliceDeprecationWarning) as warned:
        registered(Old(), "old")
    messages = sorted(str(w.message) for w in warned)
    assert len(messages) == 2 and all("the `register` callable is deprecated" in m for m in messages)
    assert "alice_register_backbones(register)" in messages[0] and "`registrar.backbone(...)`" in messages[0]
    assert "`registrar.label_mapper(...)`" in messages[1]
    assert {w.filename for w in warned} == {__file__}  # it points at the plugin's own code
    reg = plugins.get_registry()
    assert reg.plugins["old"].provides == {"backbone": ["echo"], "label mapper": ["old-mapper"]}
    assert reg.backbone("echo").name == "echo" and reg.label_mapper("old-mapper")(["A"], ["a"]) == {"A": "a"}


def test_two_plugins_registering_one_name_is_an_error_naming_both(registered):
    class A:
        @hookimpl
        def alice_register_backbones(self, registrar):
            registrar.backbone(EchoBackbone)

    registered(A(), "plugin-a")
    registered(A(), "plugin-b")
    with pytest.raises(AliceError, match="'plugin-a' and 'plugin-b'"):
        plugins.get_registry().backbone("echo")


def test_registering_something_that_is_not_a_backbone_is_reported(registered):
    class Wrong:
        @hookimpl
        def alice_register_backbones(self, registrar):
            registrar.backbone(object)

    registered(Wrong(), "wrong-kind")
    assert "not a subclass" in plugins.get_registry().plugins["wrong-kind"].error


def test_registering_something_that_is_not_a_tracker_is_reported(registered):
    class Wrong:
        @hookimpl
        def alice_register_trackers(self, registrar):
            registrar.tracker(EchoBackbone)

    registered(Wrong(), "wrong-tracker")
    error = plugins.get_registry().plugins["wrong-tracker"].error
    assert "not a subclass of alice.plugin.tracker.Tracker" in error


def test_an_extractor_returning_the_wrong_feature_size_names_its_plugin():
    from alice.data.features import check_features

    with pytest.raises(
        AliceError,
        match=r"backbone 'echo' \(plugin 'somewhere'\) returned features of shape \(2, 5\), expected \(2, 3\)",
    ):
        check_features(EchoBackbone().extract([1, 2], torch.device("cpu")), EchoBackbone(), 2, "somewhere")
    with pytest.raises(AliceError, match="NaN"):
        check_features(torch.full((2, 3), float("nan")), EchoBackbone(), 2, "somewhere")


def test_unknown_names_list_what_is_known():
    with pytest.raises(AliceError, match=r"unknown backbone 'nope' \(known: .*pixels"):
        plugins.get_registry().backbone("nope")


@pytest.fixture
def broken_distribution(tmp_path) -> dict:
    """An installed distribution whose ``alice`` entry point cannot be imported."""
    site = tmp_path / "site"
    dist = site / "alice_broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: alice-broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[alice]\nbroken = alice_no_such_module_xyz\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    return env


def test_cli_survives_a_plugin_that_fails_to_import(broken_distribution):
    r = alice("plugins", "list", "--json", env=broken_distribution, fresh=True)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    broken = next(p for p in data["plugins"] if p["name"] == "broken")
    assert broken["status"] == "failed"
    assert "alice_no_such_module_xyz" in broken["error"]
    assert next(p for p in data["plugins"] if p["name"] == "image")["status"] == "ok"
    # other commands keep working, and an unknown name points at the failure
    r = alice("reference", "list", "--json", env=broken_distribution, fresh=True)
    assert r.code == 0
    assert "digits-image" in r.out
    r = refused(
        "plugin(s) broken failed to load",
        "reference",
        "build",
        "digits-image",
        "--set",
        "backbone.name=nope",
        "--out",
        "unused",
        env=broken_distribution,
        fresh=True,
    )
    assert r.code == 2


def test_allow_list_env_var_loads_only_named_plugins():
    env = dict(os.environ, ALICE_PLUGINS="image")
    r = alice("plugins", "list", "--json", env=env, fresh=True)
    names = {p["name"] for p in json.loads(r.out)["plugins"]}
    assert "image" in names
    assert "text" not in names
    assert "digits" not in names


def test_a_plugin_with_a_misspelt_hook_is_left_out_whole_under_its_own_name(registered):
    """pluggy takes the good hook and complains of the unknown one later, under no name; ALICE leaves the plugin out."""

    class Misspelt:
        @hookimpl
        def alice_register_backbones(self, registrar):
            registrar.backbone(EchoBackbone)

        @hookimpl
        def alice_register_dataset(self, register):  # the hook is alice_register_datasets
            pass

    registered(Misspelt(), "misspelt")
    reg = plugins.get_registry()
    info = reg.plugins["misspelt"]
    assert info.error
    assert "alice_register_dataset" in info.error
    assert info.provides == {}
    assert "echo" not in reg.names("backbone")  # its correct hook contributed nothing either
    assert not any(name.startswith("unknown") for name in reg.plugins)  # no anonymous row takes the blame
    with pytest.raises(AliceError, match=r"plugin\(s\) misspelt failed to load"):
        reg.backbone("echo")
    r = alice("plugins", "list")
    assert "misspelt" in r.out
    assert "FAILED" in r.out


# ----------------------------------------------------------------- lazy registration: by name and place


def test_a_lazy_registration_is_imported_on_first_use_and_checked_then(registered):
    class Lazy:
        @hookimpl
        def alice_register_backbones(self, registrar):
            # its class is named "echo": caught on first use
            registrar.backbone("lazy-echo", "cli_helpers:EchoBackbone")
            registrar.backbone("ghost", "alice_no_such_module_xyz:Ghost")

    registered(Lazy(), "lazy")
    reg = plugins.get_registry()
    assert reg.plugins["lazy"].provides == {"backbone": ["lazy-echo", "ghost"]}
    assert reg.plugins["lazy"].error is None
    with pytest.raises(AliceError, match=r"backbone 'ghost' of plugin 'lazy' cannot be loaded .*ModuleNotFoundError"):
        reg.backbone("ghost")
    with pytest.raises(AliceError, match=r"cli_helpers:EchoBackbone is named 'echo'"):
        reg.backbone("lazy-echo")
    assert any("ghost" in p for p in reg.problems)
    assert reg.backbone("pixels")  # the rest still works
    data = json.loads(alice("plugins", "list", "--check", "--json").out)
    assert next(p for p in data["plugins"] if p["name"] == "lazy")["status"] == "failed"


def test_a_malformed_lazy_registration_leaves_the_plugin_out_whole(registered):
    class Malformed:
        @hookimpl
        def alice_register_datasets(self, registrar):
            registrar.dataset("fine", "alice_plugins.digits.datasets:DigitsImage")
            registrar.dataset("no-place", "alice_plugins.digits.datasets")  # no ':Class'

    registered(Malformed(), "malformed")
    reg = plugins.get_registry()
    assert "module:attribute" in reg.plugins["malformed"].error
    assert "fine" not in reg.names("dataset")


def test_built_in_plugins_register_lazily_and_resolve(tmp_path):
    """Listing imports no backbone module; `--check` imports every one and finds nothing wrong."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from alice.plugin.manager import get_registry\n"
        "reg = get_registry()\n"
        "assert 'minilm' in reg.names('backbone') and 'digits-image' in reg.names('dataset')\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('alice_plugins.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "torch" not in out, out
    assert "backbones" not in out, out
    r = alice("plugins", "list", "--check", "--json")
    assert r.code == 0, r.out
    assert json.loads(r.out)["problems"] == [], r.out
