"""Plugins: built-ins arrive through entry points, broken plugins are isolated, clashes are named."""

from __future__ import annotations

import json
import os

import pytest
import torch
from cli_helpers import alice, refused

from alice.errors import AliceError
from alice.plugin import Backbone, hookimpl
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


class _Echo(Backbone):
    name = "echo"
    modality = "image"

    @property
    def feature_dim(self):
        return 3

    def extract(self, inputs, device):
        return torch.zeros(len(inputs), 5)  # wrong: says 3, returns 5


def test_a_plugin_whose_hook_raises_is_reported_and_the_rest_works(registered):
    class Broken:
        @hookimpl
        def alice_register_backbones(self, register):
            raise RuntimeError("boom")

    registered(Broken(), "broken-plugin")
    reg = plugins.get_registry()
    assert "broken-plugin" in reg.plugins and "boom" in reg.plugins["broken-plugin"].error
    assert any("broken-plugin" in p for p in reg.problems)
    assert reg.backbone("pixels")  # everything else still there


def test_two_plugins_registering_one_name_is_an_error_naming_both(registered):
    class A:
        @hookimpl
        def alice_register_backbones(self, register):
            register(_Echo)

    registered(A(), "plugin-a")
    registered(A(), "plugin-b")
    with pytest.raises(AliceError, match="'plugin-a' and 'plugin-b'"):
        plugins.get_registry().backbone("echo")


def test_registering_something_that_is_not_a_backbone_is_reported(registered):
    class Wrong:
        @hookimpl
        def alice_register_backbones(self, register):
            register(object)

    registered(Wrong(), "wrong-kind")
    assert "not a subclass" in plugins.get_registry().plugins["wrong-kind"].error


def test_an_extractor_returning_the_wrong_feature_size_names_its_plugin():
    from alice.data.features import check_features

    with pytest.raises(
        AliceError,
        match=r"backbone 'echo' \(plugin 'somewhere'\) returned features of shape \(2, 5\), expected \(2, 3\)",
    ):
        check_features(_Echo().extract([1, 2], torch.device("cpu")), _Echo(), 2, "somewhere")
    with pytest.raises(AliceError, match="NaN"):
        check_features(torch.full((2, 3), float("nan")), _Echo(), 2, "somewhere")


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
    assert broken["status"] == "failed" and "alice_no_such_module_xyz" in broken["error"]
    assert next(p for p in data["plugins"] if p["name"] == "image")["status"] == "ok"
    # other commands keep working, and an unknown name points at the failure
    r = alice("reference", "list", "--json", env=broken_distribution, fresh=True)
    assert r.code == 0 and "digits-image" in r.out
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
    assert "image" in names and "text" not in names and "digits" not in names


def test_a_plugin_with_a_misspelt_hook_is_left_out_whole_under_its_own_name(registered):
    """pluggy takes the good hook and complains of the unknown one later, under no name; ALICE leaves the plugin out."""

    class Misspelt:
        @hookimpl
        def alice_register_backbones(self, register):
            register(_Echo)

        @hookimpl
        def alice_register_dataset(self, register):  # the hook is alice_register_datasets
            pass

    registered(Misspelt(), "misspelt")
    reg = plugins.get_registry()
    info = reg.plugins["misspelt"]
    assert info.error and "alice_register_dataset" in info.error and info.provides == {}
    assert "echo" not in reg.names("backbone")  # its correct hook contributed nothing either
    assert not any(name.startswith("unknown") for name in reg.plugins)  # no anonymous row takes the blame
    with pytest.raises(AliceError, match=r"plugin\(s\) misspelt failed to load"):
        reg.backbone("echo")
    r = alice("plugins", "list")
    assert "misspelt" in r.out and "FAILED" in r.out


# ----------------------------------------------------------------- lazy registration: by name and place


def test_a_lazy_registration_is_imported_on_first_use_and_checked_then(registered):
    class Lazy:
        @hookimpl
        def alice_register_backbones(self, register):
            register("lazy-echo", "test_plugins:_Echo")  # its class is named 'echo': caught on first use
            register("ghost", "alice_no_such_module_xyz:Ghost")

    registered(Lazy(), "lazy")
    reg = plugins.get_registry()
    assert reg.plugins["lazy"].provides == {"backbone": ["lazy-echo", "ghost"]} and reg.plugins["lazy"].error is None
    with pytest.raises(AliceError, match=r"backbone 'ghost' of plugin 'lazy' cannot be loaded .*ModuleNotFoundError"):
        reg.backbone("ghost")
    with pytest.raises(AliceError, match=r"test_plugins:_Echo is named 'echo'"):
        reg.backbone("lazy-echo")
    assert any("ghost" in p for p in reg.problems) and reg.backbone("pixels")  # the rest still works
    data = json.loads(alice("plugins", "list", "--check", "--json").out)
    assert next(p for p in data["plugins"] if p["name"] == "lazy")["status"] == "failed"


def test_a_malformed_lazy_registration_leaves_the_plugin_out_whole(registered):
    class Malformed:
        @hookimpl
        def alice_register_datasets(self, register):
            register("fine", "alice_plugins.digits.datasets:DigitsImage")
            register("no-place", "alice_plugins.digits.datasets")  # no ':Class'

    registered(Malformed(), "malformed")
    reg = plugins.get_registry()
    assert "module:attribute" in reg.plugins["malformed"].error and "fine" not in reg.names("dataset")


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
    assert "torch" not in out and "backbones" not in out, out
    r = alice("plugins", "list", "--check", "--json")
    assert r.code == 0 and json.loads(r.out)["problems"] == [], r.out
