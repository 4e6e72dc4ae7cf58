"""Check a deployed cloud from the deploy machine with real protocol and API calls.

One module per area; each check registers itself where it is defined
(`@check("name")`), under the name that catalog.yml's `verify:` lists use:

- `core`: the frame (context, registry, runner, result lines); areas import it
- `net`: probes over the wire the areas share (TCP greeting, HTTP GET)
- `infra`: MariaDB, RabbitMQ, memcached, each in its own protocol
- `identity`: Keystone (tokens, catalog, endpoints)
- `image`: Glance
- `compute`: Placement, Neutron and the Nova scenario
- `run`: `run_verify`, the planned services' checks in plan order

The services still to come get one module each, imported below so their
checks register: `storage` (Cinder, Swift), `orchestration` (Heat),
`dashboard` (Horizon), `telemetry` (Ceilometer). An area module imports
from `core` (and `net`), never from this package's root.
"""

from osdeploy.verify import compute, identity, image, infra
from osdeploy.verify.core import CHECKS
from osdeploy.verify.run import run_verify

__all__ = ["CHECKS", "compute", "identity", "image", "infra", "run_verify"]
