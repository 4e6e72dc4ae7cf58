#!/usr/bin/python3
"""Whether gnocchi-upgrade has anything to do; changes nothing.

Installed by osdeploy (roles/gnocchi) and run as the gnocchi user with
Gnocchi's own configuration (/etc/gnocchi/gnocchi.conf). Gnocchi has no
read-only counterpart of gnocchi-upgrade (no "db version" or "db check"),
so this asks what gnocchi-upgrade (gnocchi/cli/manage.py) would do:

- the indexer's schema: its alembic revision against the heads of the
  installed package's migrations;
- the default archive policies: gnocchi-upgrade creates them when the
  indexer holds neither a policy nor a rule;
- the incoming storage: its sacks are created once, by gnocchi-upgrade.

Exit 0: nothing to do. Exit 3: an upgrade is pending (the reasons on
stdout). Anything else is an error (the database or Ceph unreachable, a
broken configuration): the caller fails and shows it.
"""

import logging
import sys
from pathlib import Path

import gnocchi.indexer
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from gnocchi import incoming, indexer, service

PENDING = 3


def reasons() -> list[str]:
    """What gnocchi-upgrade would change, in words; empty when nothing."""
    conf = service.prepare_service(
        args=[], log_to_std=True, logging_level=logging.ERROR, skip_log_opts=True
    )
    found = []
    index = indexer.get_driver(conf)
    migrations = Path(gnocchi.indexer.__file__).parent / "alembic"
    heads = set(ScriptDirectory(str(migrations)).get_heads())
    with index.get_engine().connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current != heads:
        found.append(
            f"indexer schema at {sorted(current) or 'none'}, the package's at {sorted(heads)}"
        )
    elif not index.list_archive_policies() and not index.list_archive_policy_rules():
        found.append("no archive policy and no archive policy rule")
    try:
        sacks = incoming.get_driver(conf).NUM_SACKS
    except incoming.SackDetectionError:
        found.append("the incoming storage has no sacks")
    else:
        print(f"incoming storage: {sacks} sacks")
    return found


def main() -> int:
    found = reasons()
    for reason in found:
        print(f"pending: {reason}")
    return PENDING if found else 0


if __name__ == "__main__":
    sys.exit(main())
