"""Shared fixtures: the real catalog, and config files written into a tmp deployment dir."""

import importlib.util
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from osdeploy.catalog import Catalog, load_catalog
from osdeploy.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
KEY_NAME = "id_test"

#: A minimal valid config; tests append or replace parts of it.
BASE_CONFIG = """\
name: test
ssh: {user: debian, key: id_test}
hosts:
  - {name: ctl1, address: 10.0.0.5, roles: [control, network]}
  - {name: cmp1, address: 10.0.0.6, roles: [compute]}
"""


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def undeployable(catalog: Catalog, name: str) -> Catalog:
    """The catalog with service ``name`` not deployable: every service of the
    real one is, so the tests of that refusal make one that is not."""
    services = tuple(
        replace(s, deployable=False) if s.name == name else s for s in catalog.services
    )
    return replace(catalog, services=services)


def load_module(relative: str) -> ModuleType:
    """A Python file of the tree that is not in a package (an Ansible module), imported."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_key(directory: Path, name: str = KEY_NAME) -> Path:
    key = directory / name
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("not a real key\n")
    key.chmod(0o600)
    return key


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write ``text`` as tmp_path/osdeploy.yml next to an SSH key file ``id_test``."""

    def write(text: str) -> Path:
        write_key(tmp_path)
        path = tmp_path / "osdeploy.yml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def make_config(write_config: Callable[[str], Path], catalog: Catalog) -> Callable[..., Config]:
    """A loaded config: BASE_CONFIG plus ``services`` and any extra YAML."""

    def make(services: str = "[keystone]", extra: str = "") -> Config:
        return load_config(write_config(f"{BASE_CONFIG}services: {services}\n{extra}"), catalog)

    return make
