"""Check a deployed cloud from the deploy machine with real protocol and API calls.

One module per area; each check registers itself where it is defined
(`@check("name")`), under the name that catalog.yml's `verify:` lists use:

- `core`: the frame (context, registry, runner, result lines); areas import it
- `net`: probes over the wire the areas share (TCP greeting, HTTP GET)
- `infra`: MariaDB, RabbitMQ, memcached, each in its own protocol
- `identity`: Keystone (tokens, catalog, endpoints)
- `image`: Glance
- `compute`: Placement, Neutron and the Nova scenario
- `storage` (with `ceph`, where and as whom Ceph is read): Ceph and Cinder
- `object_storage`: Swift
- `orchestration`: Heat (stacks from docs/examples, both APIs)
- `dashboard` (with `browser`, headless Chromium): Horizon as the demo user sees it
- `telemetry`: Gnocchi's API, and Ceilometer metering what the demo project does
  (with `osdeploy.gnocchi`, and `osdeploy.usage`'s table)
- `run`: `run_verify`, the planned services' checks in plan order (`--skip`)

Every module of this package is imported below, so a new area module's
checks register without touching this file. An area module imports from
`core` (and `net`), never from this package's root.
"""

import importlib
import pkgutil

from osdeploy.verify.core import CHECKS
from osdeploy.verify.run import run_verify

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["CHECKS", "run_verify"]
