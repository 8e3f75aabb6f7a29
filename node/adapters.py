"""The node as the sensor adapters' sink (hardware.base.Sink): each batch through the domain in
the node's writer thread, refusals turned into the adapters' ``hardware.errors.Refused`` with the
reason."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from domain.errors import DomainError
from domain.sensors.site import site_id
from hardware.base import Batch, PointDefinition
from hardware.errors import Refused

Call = Callable[..., Awaitable[Any]]  # runs a storage function in the node's writer thread


def _reason(e: DomainError) -> str:
    """The refusal as the adapter counts and logs it: in the process's language (an Invalid
    names each field)."""
    return e.message()


class NodeSink:
    def __init__(self, node: Any, write: Call, user: str = "monitoring") -> None:
        self.node, self.write, self.user = node, write, user

    async def readings(self, batch: Batch) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self.write(
                self.node.ingest, batch.site, batch.body(), user=self.user
            )
        except DomainError as e:
            raise Refused(_reason(e)) from None
        return result

    async def points(self, site: str, points: list[PointDefinition]) -> dict[str, Any]:
        return dict(await self.write(self._register, site, points))

    def _register(self, site: str, points: list[PointDefinition]) -> dict[str, Any]:
        """Register what the site lacks, each point on its own (one refused point does not
        stop the others); a point already registered is left as it is."""
        try:
            known = set(self.node.show(site, "site")["points"])
        except DomainError as e:
            raise Refused(_reason(e)) from None
        registered, refused = [], {}
        for p in points:
            if p.point in known:
                continue
            body: dict[str, Any] = {"point_code": p.point, "sensor_type": p.sensor_type}
            if p.place:
                body["place"] = p.place
            if p.location:
                body["location"] = p.location
            if p.thresholds:
                body["thresholds"] = p.thresholds
            try:
                self.node.execute(
                    "sensor.register-point",
                    json.dumps(body),
                    user=self.user,
                    target=str(site_id(site, self.node.config.node.region)),
                )
                registered.append(p.point)
            except DomainError as e:
                refused[p.point] = _reason(e)
        return {"registered": registered, "refused": refused}
