"""Gnocchi's REST API (service type ``metric``), through a keystoneauth session.

A thin client of the calls osdeploy makes, each one request: verify's
checks (`osdeploy.verify.telemetry`) and `osdeploy usage`
(`osdeploy.usage`) use it. The endpoint comes from the token's catalog
(type ``metric`` on the connection's interface and region), so what works
here works for ``openstack metric ...`` with the written clouds.yaml.

Calls (Gnocchi 4.x, /v1):

- ``GET status``, ``GET archive_policy``, ``GET resource/<type>/<id>``;
- ``POST resource/<type>`` (with its metrics), ``DELETE resource/<type>/<id>``;
- ``POST metric/<id>/measures``, ``GET metric/<id>/measures`` (``aggregation``,
  ``refresh``);
- ``POST search/resource/<type>`` with a JSON filter, following the ``next``
  links of its pages;
- ``POST aggregates`` with ``operations`` ``(metric (NAME mean) ...)``,
  ``resource_type`` and ``search``, and ``start``, ``stop``,
  ``needed_overlap=0``, ``fill=dropna`` (points a series lacks are left out,
  not filled): measures per resource id, metric name and aggregation.

HTTP errors raise keystoneauth's ``HttpError`` (``http_status``, ``details``),
which `osdeploy.verify.core.explain` turns into one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

SERVICE_TYPE = "metric"
#: Resources per page of a search (Gnocchi's own upper bound is its max_limit, 1000).
PAGE = 500

Point = tuple[str, float, float]
#: Aggregates' answer: resource id -> metric name -> aggregation -> points.
Measures = dict[str, dict[str, dict[str, list[Point]]]]


def metric_operations(names: Sequence[str], aggregation: str = "mean") -> str:
    """The aggregates API's ``operations`` for each named metric's own series.

    >>> metric_operations(["cpu", "vcpus"])
    '(metric (cpu mean) (vcpus mean))'
    """
    return "(metric " + " ".join(f"({name} {aggregation})" for name in names) + ")"


def project_window(project_id: str, start: datetime, stop: datetime) -> dict[str, Any]:
    """A resource search filter: the project's resources that lived at some
    moment between ``start`` and ``stop`` (not ended before, not started after)."""
    return {
        "and": [
            {"=": {"project_id": project_id}},
            {"or": [{"=": {"ended_at": None}}, {">=": {"ended_at": start.isoformat()}}]},
            {"<=": {"started_at": stop.isoformat()}},
        ]
    }


class Gnocchi:
    """Gnocchi's API through an openstacksdk connection's keystoneauth session."""

    def __init__(self, conn: Any) -> None:
        from keystoneauth1.adapter import Adapter  # slow import: only when used

        config = conn.config
        self.api = Adapter(
            session=conn.session,
            service_type=SERVICE_TYPE,
            interface=config.get_interface(),
            region_name=config.get_region_name(),
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.api.request(path, method, **kwargs)
        return response.json() if response.content else None

    def endpoint(self) -> str:
        return str(self.api.get_endpoint() or "")

    def status(self) -> dict[str, Any]:
        return dict(self._json("GET", "/v1/status"))

    def archive_policies(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/v1/archive_policy"))

    def resource(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """A resource with its type's attributes and ``metrics`` (name -> id); None when absent."""
        from keystoneauth1 import exceptions

        try:
            return dict(self._json("GET", f"/v1/resource/{resource_type}/{resource_id}"))
        except exceptions.NotFound:
            return None

    def create_resource(self, resource_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A new resource (``metrics``: name -> {archive_policy_name}) as Gnocchi stored it."""
        return dict(self._json("POST", f"/v1/resource/{resource_type}", json=dict(body)))

    def delete_resource(self, resource_type: str, resource_id: str) -> bool:
        """Delete a resource and its metrics; False when there was none."""
        from keystoneauth1 import exceptions

        try:
            self.api.delete(f"/v1/resource/{resource_type}/{resource_id}")
        except exceptions.NotFound:
            return False
        return True

    def add_measures(self, metric_id: str, measures: Iterable[tuple[datetime, float]]) -> None:
        body = [{"timestamp": when.isoformat(), "value": value} for when, value in measures]
        self.api.post(f"/v1/metric/{metric_id}/measures", json=body)

    def measures(
        self, metric_id: str, aggregation: str = "mean", refresh: bool = False
    ) -> list[Point]:
        """A metric's aggregated points (every granularity); ``refresh`` has the
        API aggregate what metricd has not yet (for the metric's readers)."""
        params = {"aggregation": aggregation, "refresh": "true" if refresh else "false"}
        found = self._json("GET", f"/v1/metric/{metric_id}/measures", params=params) or []
        return [(str(ts), float(g), float(v)) for ts, g, v in found]

    def search(self, resource_type: str, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Resources of a type (with that type's attributes) matching a filter; every page."""
        found: list[dict[str, Any]] = []
        url = f"/v1/search/resource/{resource_type}"
        params: dict[str, Any] | None = {"limit": PAGE}
        while url:
            response = self.api.post(url, json=query, params=params)
            found += response.json()
            url = response.links.get("next", {}).get("url", "")
            params = None  # the next link carries them
        return found

    def aggregates(
        self,
        resource_type: str,
        query: Mapping[str, Any],
        names: Sequence[str],
        start: datetime,
        stop: datetime,
        aggregation: str = "mean",
    ) -> Measures:
        """The named metrics' measures of the resources a filter finds, between
        ``start`` and ``stop``, per resource id (none when no resource has them)."""
        body = {
            "operations": metric_operations(names, aggregation),
            "resource_type": resource_type,
            "search": dict(query),
        }
        params = {
            "start": start.isoformat(),
            "stop": stop.isoformat(),
            "needed_overlap": 0,
            "fill": "dropna",
        }
        answer = self._json("POST", "/v1/aggregates", json=body, params=params) or {}
        measures: Measures = {}
        for resource_id, metrics in (answer.get("measures") or {}).items():
            measures[resource_id] = {
                metric: {
                    agg: [(str(ts), float(g), float(v)) for ts, g, v in points]
                    for agg, points in by_agg.items()
                }
                for metric, by_agg in metrics.items()
            }
        return measures
