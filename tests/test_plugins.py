"""Plugins: built-ins arrive through entry points, broken plugins are isolated, clashes are named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alice import plugins
from alice.backbones import Backbone
from alice.errors import AliceError
from alice.hookspecs import hookimpl


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
    from alice.features import check_features

    with pytest.raises(AliceError, match=r"backbone 'echo' \(plugin 'somewhere'\) returned features of shape \(2, 5\), expected \(2, 3\)"):
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


def _alice(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "alice", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_cli_survives_a_plugin_that_fails_to_import(broken_distribution):
    r = _alice("plugins", "list", "--json", env=broken_distribution)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    broken = next(p for p in data["plugins"] if p["name"] == "broken")
    assert broken["status"] == "failed" and "alice_no_such_module_xyz" in broken["error"]
    assert next(p for p in data["plugins"] if p["name"] == "image")["status"] == "ok"
    # other commands keep working, and an unknown name points at the failure
    r = _alice("reference", "list", "--json", env=broken_distribution)
    assert r.returncode == 0 and "digits-image" in r.stdout
    r = _alice("reference", "build", "digits-image", "--set", "backbone.name=nope", "--out", "unused", env=broken_distribution)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "plugin(s) broken failed to load" in errors[0]


def test_allow_list_env_var_loads_only_named_plugins():
    env = dict(os.environ, ALICE_PLUGINS="image")
    r = _alice("plugins", "list", "--json", env=env)
    names = {p["name"] for p in json.loads(r.stdout)["plugins"]}
    assert "image" in names and "text" not in names and "digits" not in names
