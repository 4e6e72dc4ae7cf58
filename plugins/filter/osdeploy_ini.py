"""Filter ``osdeploy_ini``: render {section: {option: value}} as an INI file body.

Every OpenStack service role renders its config files from a dict of role
defaults merged with the user's ``<svc>_<file>_overrides``; this filter is the
one place that turns such a dict into oslo.config syntax:

- a value of None leaves the option out (so an override can remove one);
- booleans are written ``true``/``false``;
- lists are written comma separated (oslo.config ListOpt);
- a mapping ``{each: [a, b]}`` writes the option once per item (oslo.config
  MultiStrOpt, e.g. Ceilometer's ``[notification] messaging_urls``);
- sections and options keep their order (role defaults first).
"""

from collections.abc import Mapping
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return ",".join(_value(item) for item in value)
    return str(value)


def osdeploy_ini(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """The INI text of ``sections``, one blank line before each section."""
    lines: list[str] = []
    for section, options in sections.items():
        lines += ["", f"[{section}]"]
        for key, value in options.items():
            if isinstance(value, Mapping) and set(value) == {"each"}:
                lines += [f"{key} = {_value(item)}" for item in value["each"]]
            elif value is not None:
                lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


class FilterModule:
    """Ansible's entry point."""

    def filters(self) -> dict[str, Any]:
        return {"osdeploy_ini": osdeploy_ini}
