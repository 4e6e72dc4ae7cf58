"""The osdeploy_ini filter every service role renders its config files with."""

import importlib.util
from types import ModuleType

from osdeploy import PROJECT_ROOT


def _load() -> ModuleType:
    path = PROJECT_ROOT / "plugins" / "filter" / "osdeploy_ini.py"
    spec = importlib.util.spec_from_file_location("osdeploy_ini", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODULE = _load()
ini = MODULE.osdeploy_ini


def test_types_and_order() -> None:
    text = ini(
        {
            "DEFAULT": {"debug": False, "workers": 2, "log_dir": "/var/log/x"},
            "cache": {"enabled": True, "memcache_servers": ["a:11211", "b:11211"]},
        }
    )
    assert text == (
        "\n[DEFAULT]\ndebug = false\nworkers = 2\nlog_dir = /var/log/x\n"
        "\n[cache]\nenabled = true\nmemcache_servers = a:11211,b:11211\n"
    )


def test_none_leaves_the_option_out_and_empty_sections_stay() -> None:
    assert ini({"a": {"x": None, "y": "1"}, "b": {}}) == "\n[a]\ny = 1\n\n[b]\n"


def test_the_filter_is_registered() -> None:
    assert MODULE.FilterModule().filters()["osdeploy_ini"] is ini


def test_each_writes_a_multi_valued_option_once_per_item() -> None:
    text = ini(
        {"notification": {"messaging_urls": {"each": ["rabbit://a//nova", "rabbit://a//glance"]}}}
    )
    assert text == (
        "\n[notification]\nmessaging_urls = rabbit://a//nova\nmessaging_urls = rabbit://a//glance\n"
    )
    assert ini({"n": {"m": {"each": []}}}) == "\n[n]\n"
