"""Which switch port feeds which device, from the agents' inventories and LLDP.

Pure logic, no I/O: the alert engine feeds it the retained ``inventory`` messages
(:meth:`Topology.update`) and the ``lldp_link`` readings (:meth:`Topology.observe_lldp`),
and asks who feeds whom when it suppresses alerts behind a dead switch or port.

- Devices are keyed by (ward, device id). Ids are unique within an agent; should two
  agents of one ward list the same id, the inventory with the later ``time_ms`` (then the
  one that arrived later) wins, and a warning is logged once for that device.
- A ``feed`` in an agent's config always wins (``feed_source="config"``).
- A device without one gets its feed from LLDP (``feed_source="lldp"``): a switch of the
  ward reports, on its port ``if_name``, a neighbour whose sysName matches the device's id
  or host, case-insensitively, with the domain suffix stripped (``cam-3.hoian.local``
  matches ``cam-3``); an exact match beats a short-name one, and a short name that fits
  two devices matches neither. The neighbour is fed by the reporter, so a switch behind a
  switch gets a feed too, not the reporting switch. When several reports name one device,
  the most recent change wins.
- Direction between two switches that report each other: links reported by a switch that
  already leads up to the ward's uplink switch (the one with ``uplink`` set) are applied
  first, level by level; the reverse report would then close a cycle and is ignored.
  The uplink switch itself never gets an LLDP feed, and what its uplink port sees is not
  fed by it. Self-loops and links that would close a cycle are ignored.
- Every walk (``ancestors``, ``behind``) is cycle-safe: configs may still declare one.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Literal

from wardwatch import wire

log = logging.getLogger(__name__)

FeedSource = Literal["config", "lldp"]
MAX_LLDP_PER_WARD: Final = 50_000  # (switch, port) neighbours kept per ward; the oldest go first


@dataclass(frozen=True, slots=True)
class Node:
    """One device of the topology."""

    ward: str
    id: str
    kind: str  # switch, ap, camera
    agent: str
    vendor: str | None
    interval_s: float
    host: str
    feed: tuple[str, str] | None  # (switch id, port ifName)
    feed_source: FeedSource | None
    uplink: str | None = None  # a switch: the ifName of the ward's uplink port


@dataclass(slots=True)
class _Inv:
    time_ms: int
    arrival: int
    devices: list[wire.InventoryDevice]


_Owners = dict[str, tuple[str, wire.InventoryDevice]]  # device id -> (agent, device)


def _exact(name: str) -> str:
    return name.strip().lower().rstrip(".")


@functools.lru_cache(maxsize=65536)
def _short(name: str) -> str:
    """Lower case, without a trailing dot, and without the domain suffix unless an IP address."""
    name = name.strip().lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name.split(".", 1)[0]
    return name


class Topology:
    def __init__(self) -> None:
        self._inventories: dict[tuple[str, str], _Inv] = {}  # (ward, agent) -> its latest inventory
        self._lldp: dict[str, OrderedDict[tuple[str, str], str]] = {}  # ward -> (switch, port) -> sysName
        self._owners: dict[str, _Owners] = {}  # ward -> which agent's device each id is
        self._names: dict[str, tuple[dict[str, set[str]], dict[str, set[str]]]] = {}  # ward -> exact, short
        self._nodes: dict[str, dict[str, Node]] = {}  # ward -> device id -> node
        self._children: dict[str, dict[str, list[str]]] = {}  # ward -> switch id -> devices it feeds
        self._dirty: set[str] = set()  # wards whose feeds are rebuilt at the next query
        self._arrivals = 0
        self._warned: set[tuple[str, str]] = set()

    # input ------------------------------------------------------------------------

    def update(self, inv: wire.Inventory) -> None:
        """An agent's (retained) inventory: it replaces that agent's devices."""
        self._arrivals += 1
        self._inventories[(inv.ward, inv.agent)] = _Inv(inv.time_ms, self._arrivals, list(inv.devices))
        self._reindex(inv.ward)

    def forget(self, ward: str, agent: str) -> None:
        """The agent's retained inventory was cleared (an empty retained message)."""
        if self._inventories.pop((ward, agent), None) is not None:
            self._reindex(ward)

    def observe_lldp(self, ward: str, switch: str, if_name: str, remote_sysname: str) -> None:
        """An ``lldp_link`` reading: ``switch`` (its device) sees ``remote_sysname`` on its port
        ``if_name`` (the reading's tag). Unchanged reports cost a dict lookup; a change is
        applied at the next query, so a switch's batch of them costs one rebuild."""
        if not remote_sysname.strip():
            return
        seen = self._lldp.setdefault(ward, OrderedDict())
        key = (switch, if_name)
        if seen.get(key) == remote_sysname:
            return
        seen[key] = remote_sysname
        seen.move_to_end(key)
        while len(seen) > MAX_LLDP_PER_WARD:
            seen.popitem(last=False)
        self._dirty.add(ward)

    # queries ----------------------------------------------------------------------

    def _ward(self, ward: str) -> dict[str, Node]:
        if ward in self._dirty:
            self._rebuild(ward)
        return self._nodes.get(ward, {})

    def device(self, ward: str, device: str) -> Node | None:
        return self._ward(ward).get(device)

    def parent(self, ward: str, device: str) -> Node | None:
        """The switch that feeds it."""
        node = self.device(ward, device)
        if node is None or node.feed is None:
            return None
        return self.device(ward, node.feed[0])

    def ancestors(self, ward: str, device: str) -> list[Node]:
        """The switches between it and the root, nearest first; stops at a cycle."""
        out: list[Node] = []
        seen = {device}
        node = self.parent(ward, device)
        while node is not None and node.id not in seen:
            out.append(node)
            seen.add(node.id)
            node = self.parent(ward, node.id)
        return out

    def behind(self, ward: str, device: str) -> list[Node]:
        """Every device fed by it, directly or through other switches, sorted by kind then id."""
        nodes = self._ward(ward)
        children = self._children.get(ward, {})
        seen = {device}
        todo = list(children.get(device, ()))
        out: list[Node] = []
        while todo:
            dev = todo.pop()
            if dev in seen:
                continue
            seen.add(dev)
            out.append(nodes[dev])
            todo.extend(children.get(dev, ()))
        return sorted(out, key=lambda n: (n.kind, n.id))

    def devices_of(self, ward: str, agent: str) -> list[Node]:
        """The devices that agent polls (those it won a clash of ids for), by id."""
        return sorted((n for n in self._ward(ward).values() if n.agent == agent), key=lambda n: n.id)

    def agent_of(self, ward: str, device: str) -> str | None:
        node = self.device(ward, device)
        return None if node is None else node.agent

    def agents(self, ward: str) -> set[str]:
        """The agents of a ward that published an inventory (an empty one included)."""
        return {agent for (w, agent) in self._inventories if w == ward}

    def wards(self) -> set[str]:
        """Wards with at least one device."""
        return {ward for ward, owners in self._owners.items() if owners}

    def feed_text(self, ward: str, device: str) -> str:
        """``"sw-a Gi0/5"``, or ``""`` when nothing is known to feed it."""
        node = self.device(ward, device)
        if node is None or node.feed is None:
            return ""
        return f"{node.feed[0]} {node.feed[1]}"

    # building ---------------------------------------------------------------------

    def _reindex(self, ward: str) -> None:
        """After an inventory changed: who owns each id, and the names LLDP may match."""
        owners = self._owners_of(ward)
        exact: dict[str, set[str]] = {}
        short: dict[str, set[str]] = {}
        for dev_id, (_, dev) in owners.items():
            for name in (dev_id, dev.host):
                exact.setdefault(_exact(name), set()).add(dev_id)
                short.setdefault(_short(name), set()).add(dev_id)
        if owners:
            self._owners[ward] = owners
            self._names[ward] = (exact, short)
        else:
            self._owners.pop(ward, None)
            self._names.pop(ward, None)
        self._nodes.pop(ward, None)  # none may be reused: the devices changed
        self._dirty.add(ward)

    def _owners_of(self, ward: str) -> _Owners:
        """Device id -> (agent, device): the later inventory wins an id two agents list."""
        invs = sorted(((inv.time_ms, inv.arrival), agent, inv) for (w, agent), inv in self._inventories.items()
                      if w == ward)
        owners: _Owners = {}
        for _, agent, inv in invs:
            for dev in inv.devices:
                previous = owners.get(dev.id)
                if previous is not None and previous[0] != agent and (ward, dev.id) not in self._warned:
                    self._warned.add((ward, dev.id))
                    log.warning("ward %s: device %s is listed by agents %s and %s; the later inventory (%s) wins",
                                ward, dev.id, previous[0], agent, agent)
                owners[dev.id] = (agent, dev)
        return owners

    def _rebuild(self, ward: str) -> None:
        self._dirty.discard(ward)
        owners = self._owners.get(ward, {})
        feeds: dict[str, tuple[str, str, FeedSource]] = {}
        for dev_id, (agent, dev) in owners.items():
            if dev.feed is None:
                continue
            parent = owners.get(dev.feed.switch)
            if dev.feed.switch == dev_id or parent is None or parent[1].kind != "switch":
                # A switch naming itself, or another agent's device of that id won the clash.
                if (ward, f"feed:{dev_id}") not in self._warned:
                    self._warned.add((ward, f"feed:{dev_id}"))
                    log.warning("ward %s: device %s (agent %s) is fed by %s, which cannot feed it; feed ignored",
                                ward, dev_id, agent, dev.feed.switch)
                continue
            feeds[dev_id] = (dev.feed.switch, dev.feed.port, "config")

        def chain(dev_id: str) -> list[str]:
            """dev_id and its ancestors through the feeds so far, stopping at a cycle."""
            out: list[str] = []
            node: str | None = dev_id
            while node is not None and node not in out:
                out.append(node)
                feed = feeds.get(node)
                node = None if feed is None else feed[0]
            return out

        below: dict[str, list[str]] = {}  # switch -> what it feeds, so far
        for dev_id, (switch, _, _) in feeds.items():
            below.setdefault(switch, []).append(dev_id)

        def subtree(dev_id: str) -> list[str]:
            out, todo = [], [dev_id]
            while todo:
                node = todo.pop()
                if node not in anchored:
                    anchored.add(node)
                    out.append(node)
                    todo.extend(below.get(node, ()))
            return out

        # Down from the uplink switch, a level at a time: a link reported by a switch that leads
        # up to it feeds the neighbour (whose own report of the link would then close a cycle).
        # Nothing on such a path can be the neighbour, which has no feed yet: no cycle check.
        candidates = self._lldp_candidates(ward, owners, feeds)
        by_reporter: dict[str, list[tuple[int, str, str]]] = {}
        for rank, (switch, port, dev_id) in enumerate(candidates):
            by_reporter.setdefault(switch, []).append((rank, port, dev_id))
        anchored: set[str] = set()
        level = [d for root in owners if owners[root][1].uplink is not None for d in subtree(root)]
        while level:
            found = sorted((rank, switch, port, dev_id) for switch in level
                           for rank, port, dev_id in by_reporter.get(switch, ()))
            level = []
            for _, switch, port, dev_id in found:
                if dev_id not in feeds:
                    feeds[dev_id] = (switch, port, "lldp")
                    below.setdefault(switch, []).append(dev_id)
                    level.extend(subtree(dev_id))
        for switch, port, dev_id in candidates:  # no way up to an uplink switch: most recent first
            if dev_id not in feeds and dev_id not in chain(switch):
                feeds[dev_id] = (switch, port, "lldp")

        nodes: dict[str, Node] = {}
        children: dict[str, list[str]] = {}
        before = self._nodes.get(ward, {})  # the same devices: only feeds from LLDP changed
        for dev_id, (agent, dev) in owners.items():
            feed = feeds.get(dev_id)
            if feed is not None:
                children.setdefault(feed[0], []).append(dev_id)
            old = before.get(dev_id)
            if old is not None and old.feed == (None if feed is None else feed[:2]) and (
                    old.feed_source == (None if feed is None else feed[2])):
                nodes[dev_id] = old
                continue
            nodes[dev_id] = Node(
                ward=ward, id=dev_id, kind=dev.kind, agent=agent, vendor=dev.vendor, interval_s=dev.interval_s,
                host=dev.host, feed=None if feed is None else (feed[0], feed[1]),
                feed_source=None if feed is None else feed[2], uplink=dev.uplink,
            )
        if nodes:
            self._nodes[ward] = nodes
            self._children[ward] = children
        else:
            self._nodes.pop(ward, None)
            self._children.pop(ward, None)

    def _lldp_candidates(
        self, ward: str, owners: _Owners, feeds: dict[str, tuple[str, str, FeedSource]],
    ) -> list[tuple[str, str, str]]:
        """(switch, port, device) for every LLDP report that may give a device its feed,
        most recent first."""
        seen = self._lldp.get(ward)
        if not seen or ward not in self._names:
            return []
        exact, short = self._names[ward]
        out: list[tuple[str, str, str]] = []
        for (switch, port), remote in reversed(seen.items()):
            reporter = owners.get(switch)
            if reporter is None or reporter[1].kind != "switch" or port == reporter[1].uplink:
                continue
            matches = exact.get(_exact(remote)) or short.get(_short(remote)) or set()
            if len(matches) != 1:
                continue
            (dev_id,) = matches
            dev = owners[dev_id][1]
            if dev_id == switch or dev_id in feeds or dev.uplink is not None:
                continue  # a self-loop, a configured feed, or the ward's uplink switch
            out.append((switch, port, dev_id))
        return out
