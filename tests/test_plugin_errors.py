"""Plugin code that fails at run time: one line naming the plugin and the call, the traceback behind --debug.

The core calls plugin objects only through what the registry hands out (alice.plugin.guard), so
every call is covered without a try at any call site: a data set's split, a backbone's extract,
a label mapper, an intervention design's forward, a command. A plugin's own AliceError and
Ctrl-C pass through unchanged. A plugin whose command hook fails is left out whole, and a
manifest names the plugin its design, data set and backbone came from when that plugin is gone.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cli_helpers import alice, ok, refused
from torch import nn

from alice.errors import AliceError
from alice.plugin import Backbone, DataSet, Intervention, Split, hookimpl, register_plugin, unregister_plugin
from alice.plugin import manager as plugins
from alice.plugin.guard import INTERFACE, PluginError, registered_class

pytestmark = pytest.mark.usefixtures("recipe_dir")


class FaultyData(DataSet):
    """Three classes of random 4-number items; ``fail`` names the member that raises."""

    name = "faulty-data"
    modality = "image"

    def __init__(self, fail: str = "", size: int = 60) -> None:
        if size < 10:
            raise ValueError(f"option size must be at least 10, got {size}")
        self.fail, self.size = fail, size

    @property
    def vocabulary(self) -> list[str]:
        if self.fail == "vocabulary":
            raise KeyError("labels.txt")
        return ["zero", "one", "two"]

    def split(self, name: str) -> Split:
        if self.fail == "split":
            raise ValueError("the tape is torn")
        if self.fail == "alice":
            raise AliceError("data set 'faulty-data': the tape is torn; splice it")
        if self.fail == "interrupt":
            raise KeyboardInterrupt
        rng = np.random.default_rng(len(name))
        labels = (rng.random((self.size, 3)) > 0.5).astype(np.float32)
        labels[:, 0] = 1
        return Split(list(rng.random((self.size, 4)).astype(np.float32) + labels[:, :1]), labels)


class FaultyNet(Backbone):
    name = "faulty-net"
    modality = "image"

    def __init__(self, fail: str = "") -> None:
        self.fail = fail

    @property
    def feature_dim(self) -> int:
        return 4

    def identity(self) -> dict:
        return {"name": self.name}

    def extract(self, inputs, device):
        if self.fail == "extract":
            raise ValueError("the lens cap is on")
        return torch.as_tensor(np.stack(inputs)).to(device)


def faulty_mapper(source, reference, aliases):
    return {label: reference[["zero", "one", "two"].index(label) + 10] for label in source}  # IndexError


class Shifted(Intervention):
    """One vector per class, M(z) = z + b_j - b_i; ``fail`` raises in forward."""

    name = "shifted"

    def __init__(self, num_classes: int, latent_dim: int, fail: bool = False) -> None:
        super().__init__(num_classes, latent_dim)
        self.fail = fail
        self.b = nn.Parameter(torch.zeros(num_classes, latent_dim))

    def settings(self) -> dict:
        return {"fail": self.fail}

    def forward(self, z, k):
        if self.fail:
            raise RuntimeError("the matrix is singular")
        return F.normalize(z + self.b[k.add] - self.b[k.remove], dim=-1)


class Faulty:
    @hookimpl
    def alice_register_datasets(self, registrar):
        registrar.dataset(FaultyData)

    @hookimpl
    def alice_register_backbones(self, registrar):
        registrar.backbone(FaultyNet)

    @hookimpl
    def alice_register_label_mappers(self, registrar):
        registrar.label_mapper("faulty-mapper", faulty_mapper)

    @hookimpl
    def alice_register_interventions(self, registrar):
        registrar.intervention(Shifted)


REFERENCE = (
    'stage = "reference"\nfamily = "faulty"\nmodality = "image"\n[data]\ndataset = "faulty-data"\n'
    '[backbone]\nname = "faulty-net"\n[model]\nlatent_dim = 8\nencoder_hidden = [16]\nclassifier_hidden = [16]\n'
    '[intervention]\ndesign = "shifted"\n[training]\nsteps = 5\nbatch_size = 8\neval_every = 0\n'
    "checkpoint_every = 0\n"
)


@pytest.fixture
def faulty(tmp_path):
    """The faulty plugin registered (as 'faulty') and its reference recipe written."""
    register_plugin(Faulty(), "faulty")
    (tmp_path / "faulty.toml").write_text(REFERENCE)
    yield tmp_path / "faulty.toml"
    unregister_plugin("faulty")


@pytest.mark.parametrize(
    ("setting", "where", "line"),
    [
        ("data.fail=split", "data set 'faulty-data'.split", "ValueError: the tape is torn"),
        ("data.fail=vocabulary", "data set 'faulty-data'.vocabulary", "KeyError: 'labels.txt'"),
        ("backbone.fail=extract", "backbone 'faulty-net'.extract", "ValueError: the lens cap is on"),
        ("intervention.fail=true", "intervention design 'shifted'.forward", "RuntimeError: the matrix is singular"),
    ],
)
def test_plugin_code_that_raises_is_one_line_naming_the_plugin_and_the_call(faulty, setting, where, line):
    r = refused(
        f"plugin 'faulty' failed in {where}: {line} (alice --debug shows the traceback)", *_build(faulty, setting)
    )
    assert r.code == 1
    assert not (faulty.parent / "out").exists()


def _build(recipe: Path, *sets: str) -> list:
    return ["reference", "build", recipe, "--out", recipe.parent / "out", *(a for s in sets for a in ("--set", s))]


def test_the_traceback_is_behind_the_debug_switch(faulty):
    plain = alice(*_build(faulty, "data.fail=split"))
    assert "Traceback" not in plain.err
    for r in (
        alice(*_build(faulty, "data.fail=split"), env={**os.environ, "ALICE_DEBUG": "1"}),
        alice("--debug", *_build(faulty, "data.fail=split")),
    ):
        assert r.code == 1
        assert "Traceback" in r.err, r.err
        assert 'raise ValueError("the tape is torn")' in r.err, r.err
        assert r.errors == [
            "error: plugin 'faulty' failed in data set 'faulty-data'.split: ValueError: the tape is torn"
        ]


def test_a_plugins_own_alice_error_and_ctrl_c_pass_through_unchanged(faulty):
    r = refused("data set 'faulty-data': the tape is torn; splice it", *_build(faulty, "data.fail=alice"))
    assert r.code == 2
    assert "plugin 'faulty' failed" not in r.err
    r = alice(*_build(faulty, "data.fail=interrupt"))
    assert r.code == 130
    assert r.errors == ["error: interrupted before the first checkpoint; nothing was written"]
    # a bad option value is the user's mistake, said by the plugin (ValueError/TypeError in __init__)
    refused("data set 'faulty-data': option size must be at least 10, got 3", *_build(faulty, "data.size=3"))
    refused("data set 'faulty-data': unknown option 'colour'", *_build(faulty, "data.colour=1"))


def test_a_label_mapper_that_raises_names_its_plugin(faulty, reference_copy):
    recipe = faulty.parent / "faulty-image.toml"
    recipe.write_text(
        'stage = "modality"\nmodality = "image"\n[data]\ndataset = "faulty-data"\n[backbone]\nname = "faulty-net"\n'
        '[labels]\nmapper = "faulty-mapper"\n[training]\nsteps = 5\nbatch_size = 8\n'
    )
    r = refused(
        "plugin 'faulty' failed in label mapper 'faulty-mapper': IndexError: list index out of range",
        *("modality", "add", "image", "--reference", reference_copy, "--recipe", recipe, "--name", "faulty"),
    )
    assert r.code == 1
    assert not (reference_copy / "adapters" / "faulty").exists()


def test_what_the_registry_hands_out_is_the_plugins_class_behind_the_guard(faulty):
    reg = plugins.get_registry()
    data, design = reg.dataset("faulty-data"), reg.intervention("shifted")
    assert issubclass(data, FaultyData)
    assert registered_class(data) is FaultyData
    assert data.__name__ == "FaultyData"
    assert isinstance(data(), FaultyData)
    assert data().split("train").labels.shape == (60, 3)
    # signatures read through the guard: the settings a design declares, the options a data set takes
    assert design.setting_names() == ("fail",)
    assert "size" in inspect.signature(data.__init__).parameters
    module = design(3, 8)
    assert isinstance(module, nn.Module)
    assert set(module.state_dict()) == {"b"}
    with pytest.raises(PluginError, match=r"plugin 'faulty' failed in data set 'faulty-data'\.split") as caught:
        data(fail="split").split("train")
    assert isinstance(caught.value.__cause__, ValueError)  # the plugin's own exception, for a debugger


def test_every_member_the_core_calls_is_guarded():
    """A member added to Backbone, DataSet or Tracker must join guard.INTERFACE, or its failures would escape the
    guard."""
    from alice.plugin import Tracker

    for kind, base in (("backbone", Backbone), ("dataset", DataSet), ("tracker", Tracker)):
        public = {
            n
            for n, v in vars(base).items()
            if not n.startswith("_") and (callable(v) or isinstance(v, (property, classmethod)))
        }
        assert public <= set(INTERFACE[kind]), (kind, public - set(INTERFACE[kind]))


# ----------------------------------------------------------------- where a missing plugin's things came from


def test_a_reference_names_the_plugin_of_its_design_data_and_backbone_when_it_is_gone(faulty):
    from alice.artifacts.loaded import ReferenceSpace

    ok(*_build(faulty))
    out = faulty.parent / "out"
    reference = json.loads((out / "reference.json").read_text())
    adapter = json.loads((out / "adapters" / "image" / "adapter.json").read_text())
    assert reference["plugins"] == {"intervention": "faulty"}
    assert adapter["plugins"] == {"dataset": "faulty", "backbone": "faulty"}
    unregister_plugin("faulty")
    with pytest.raises(
        AliceError, match=r"unknown intervention design 'shifted' .*; it comes from plugin faulty, which is not"
    ):
        ReferenceSpace.load(out)

    class Broken:  # a plugin of that name that fails to load
        @hookimpl
        def alice_register_interventions(self, registrar):
            raise ImportError("no module named 'scipy'")

    register_plugin(Broken(), "faulty")
    r = refused("unknown intervention design 'shifted'", "eval", out)
    assert (
        "it comes from plugin faulty, which failed to load: alice_register_interventions failed: ImportError" in r.err
    )
    unregister_plugin("faulty")
    register_plugin(Faulty(), "faulty")  # the fixture unregisters it


def test_an_adapter_names_the_plugin_of_its_data_set_when_it_is_gone(faulty):
    from alice.artifacts.loaded import ReferenceSpace

    ok(*_build(faulty))
    space = ReferenceSpace.load(faulty.parent / "out")
    unregister_plugin("faulty")
    with pytest.raises(
        AliceError, match=r"unknown data set 'faulty-data' .*; it comes from plugin faulty, which is not"
    ):
        space.load_adapter("image").load_data(("test",), torch.device("cpu"))
    register_plugin(Faulty(), "faulty")


# ----------------------------------------------------------------- commands, through entry points


PLUGINS = {
    "loud": (  # its command hook raises: left out whole (its recipe folder too)
        "from pathlib import Path\nfrom alice.plugin import hookimpl\n\n"
        "@hookimpl\ndef alice_register_recipe_dirs(registrar):\n    registrar.recipe_folder(Path(__file__).parent)\n\n"
        "@hookimpl\ndef alice_register_commands(cli):\n    raise RuntimeError('no terminal')\n"
    ),
    "calm": (  # a command group whose second command fails
        "import typer\nfrom alice.plugin import hookimpl\n\napp = typer.Typer()\n\n"
        "@app.command()\ndef hello():\n    print('hello')\n\n"
        "@app.command()\ndef divide():\n    print(1 / 0)\n\n"
        "@hookimpl\ndef alice_register_commands(cli):\n    cli.add_typer(app, name='calm')\n"
    ),
    "clash": (  # takes a name the core uses
        "from alice.plugin import hookimpl\n\n"
        "@hookimpl\ndef alice_register_commands(cli):\n    cli.command('eval')(lambda: None)\n"
    ),
}


@pytest.fixture(scope="module")
def command_site(tmp_path_factory) -> dict:
    """Three installed plugins with commands (modules and dist-info in a folder on PYTHONPATH)."""
    site = tmp_path_factory.mktemp("command-plugins")
    for name, code in PLUGINS.items():
        (site / f"alice_{name}.py").write_text(code)
        dist = site / f"alice_{name}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: alice-{name}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[alice]\n{name} = alice_{name}\n")
    return {**os.environ, "PYTHONPATH": str(site)}


def test_a_plugin_whose_command_hook_fails_is_left_out_whole_and_reported_once(command_site):
    r = alice("plugins", "list", "--json", env=command_site, fresh=True)
    assert r.code == 0, r.err
    assert "warning" not in r.err, r.err
    listed = {p["name"]: p for p in json.loads(r.out)["plugins"]}
    loud = listed["loud"]
    assert loud["status"] == "failed"
    assert loud["error"] == "alice_register_commands failed: RuntimeError: no terminal"
    assert loud["provides"] == {}  # its recipe folder is not kept
    assert listed["clash"]["status"] == "failed"
    assert "command(s) eval, which already exist" in listed["clash"]["error"]
    assert listed["calm"]["status"] == "ok"
    assert listed["calm"]["provides"] == {"command": ["calm"]}
    assert listed["coco"]["provides"]["command"] == ["coco"]

    table = alice("plugins", "list", env=command_site, fresh=True)
    # once: FAILED in its row, the reason in one warning line
    assert "no terminal" not in table.out, table.err
    assert table.err.count("no terminal") == 1, table.err
    assert "warning: plugin 'loud': alice_register_commands failed: RuntimeError: no terminal" in table.err
    assert "command: calm" in table.out
    other = alice("reference", "list", "--json", env=command_site, fresh=True)  # no warning on other commands
    assert other.code == 0, other.err
    assert other.err == "", other.err
    # what a failed plugin would have provided is missing: the errors name the plugins that failed
    r = refused(
        "unknown recipe 'loud-image' (known: ", "reference", "build", "loud-image", env=command_site, fresh=True
    )
    assert "failed to load, see `alice plugins list`" in r.err, r.err
    assert "loud" in r.err.split("plugin(s)")[1], r.err
    r = alice("loud", env={**command_site, "COLUMNS": "300"}, fresh=True)  # one line in the error box
    assert r.code == 2
    assert "No such command 'loud'" in r.err
    assert "failed to load; see `alice plugins list`" in r.err
    assert "loud" in r.err.split("Plugin(s)")[1], r.err
    assert "clash" in r.err.split("Plugin(s)")[1], r.err


def test_a_plugin_command_that_raises_is_one_line_naming_it(command_site):
    assert alice("calm", "hello", env=command_site, fresh=True).out == "hello\n"
    r = alice("calm", "divide", env=command_site, fresh=True)
    assert r.code == 1
    assert "Traceback" not in r.err
    assert r.errors == [
        "error: plugin 'calm' failed in command 'calm divide': ZeroDivisionError: division by zero "
        "(alice --debug shows the traceback)"
    ]
    r = alice("--debug", "calm", "divide", env=command_site, fresh=True)
    assert r.code == 1
    assert "Traceback" in r.err
    assert "print(1 / 0)" in r.err


def test_a_guarded_design_compiles_without_a_graph_break():
    """Under torch.compile the guard steps aside (training.compile): one graph, as for the design itself."""
    from alice.core.interventions import GlobalIntervention, InterventionBatch

    design = plugins.get_registry().intervention("global")(10, 16)
    assert registered_class(type(design)) is GlobalIntervention
    z = F.normalize(torch.randn(8, 16), dim=-1)
    k = InterventionBatch(torch.arange(8), torch.arange(8).flip(0), torch.ones(8, dtype=torch.bool), torch.zeros(8))
    torch._dynamo.reset()
    explained = torch._dynamo.explain(lambda z: design(z, k))(z)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    assert torch.allclose(torch.compile(lambda z: design(z, k), backend="aot_eager")(z), design(z, k))
