#!/usr/bin/python3
"""Whether ceilometer-upgrade has anything to do (osdeploy, roles/ceilometer).

ceilometer-upgrade creates Ceilometer's resource types in Gnocchi and
applies its attribute changes to them (ceilometer/gnocchi_client.py,
upgrade_resource_types). This asks Gnocchi, with Ceilometer's own
configuration, client and lists, what it would do, and changes nothing.

Exit 0: nothing to do; 3: something to do (printed on stdout); anything
else: an error (Gnocchi or Keystone unreachable, a bad configuration).
"""

import sys

from ceilometer import gnocchi_client, service

PENDING = 3


def pending_work(types):
    """What upgrade_resource_types would do, given Gnocchi's resource types
    as {name: attributes}."""
    work = [
        f"create resource type {name}"
        for name in gnocchi_client.resources_initial
        if name not in types
    ]
    for ops in gnocchi_client.resources_update_operations:
        name = ops["resource_type"]
        if ops["type"] == "create_resource_type":
            if name not in types:
                work.append(f"create resource type {name} ({ops['desc']})")
            continue
        # update_attribute_type: decided by its first operation, as there.
        first = ops["data"][0]
        attribute = first["path"].replace("/attributes/", "", 1)
        present = attribute in types.get(name, {})
        if (first["op"] == "add" and not present) or (first["op"] == "remove" and present):
            work.append(f"update resource type {name}: {ops['desc']}")
    return work


def main():
    conf = service.prepare_service(argv=[sys.argv[0]])
    client = gnocchi_client.get_gnocchiclient(conf)
    types = {rt["name"]: rt.get("attributes", {}) for rt in client.resource_type.list()}
    work = pending_work(types)
    for line in work:
        print(line)
    if work:
        return PENDING
    print(f"{len(types)} resource types, nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())
