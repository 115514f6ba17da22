"""Road networks: build ``.net.xml`` from plain XML with netconvert, and measure them.

Built networks go to a content-addressed cache (``$COSIM_CACHE`` or ``~/.cache/cosim``), keyed by
the bytes of the sources, the netconvert options and SUMO's version, so a change to any of them
rebuilds and parallel runs never see a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import sumolib

from cosim.config.schema import NetworkConfig


class NetworkBuildError(RuntimeError):
    """netconvert rejected the sources (its message is included)."""


def cache_dir() -> Path:
    return Path(os.environ.get("COSIM_CACHE", Path.home() / ".cache" / "cosim"))


def sumo_version() -> str:
    out = subprocess.run([sumolib.checkBinary("sumo"), "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def build_net(nodes: Path, edges: Path, connections: Path | None, args: list[str]) -> Path:
    """The ``.net.xml`` for plain node/edge(/connection) sources, built once and cached."""
    sources = [nodes, edges] + ([connections] if connections else [])
    digest = hashlib.sha256()
    for src in sources:
        digest.update(src.read_bytes())
    digest.update("\0".join(args).encode())
    digest.update(sumo_version().encode())
    target = cache_dir() / "networks" / digest.hexdigest()[:20] / f"{nodes.name.split('.')[0]}.net.xml"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sumolib.checkBinary("netconvert"), "--node-files", str(nodes), "--edge-files", str(edges)]
    if connections:
        cmd += ["--connection-files", str(connections)]
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".net.xml", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        result = subprocess.run(cmd + args + ["--output-file", str(tmp_path)], capture_output=True, text=True)
        if result.returncode != 0:
            raise NetworkBuildError(f"netconvert failed for {nodes}: {result.stderr.strip()}")
        tmp_path.replace(target)
    finally:
        tmp_path.unlink(missing_ok=True)
    return target


def resolve_net_file(config: NetworkConfig) -> Path:
    """The network file of a scenario: given directly, or built from its plain sources."""
    if config.net_file is not None:
        return config.net_file
    assert config.nodes is not None and config.edges is not None
    return build_net(config.nodes, config.edges, config.connections, config.netconvert_args)


@dataclass(frozen=True)
class NetworkGeometry:
    """Where each edge starts on the 1-D axis a CAV observes its position on (Flow's edgestarts).

    ``offset[edge]`` is the position of the start of a normal edge; an internal (junction) edge
    continues from the end of the edge that enters it. ``length`` is the sum of the normal edges
    and normalises positions and gaps.
    """

    offset: dict[str, float]
    length: float

    def position(self, edge: str, lane_pos: float) -> float:
        return self.offset.get(edge, 0.0) + lane_pos


def route_edge_order(route_files: list[Path]) -> list[str]:
    """Edges in order of first appearance in the route files' <route edges="..."> lists."""
    order: list[str] = []
    for path in route_files:
        for element in ET.parse(path).getroot().iter("route"):
            for edge in element.get("edges", "").split():
                if edge not in order:
                    order.append(edge)
    return order


def measure_network(net_file: Path, edge_order: list[str] | None, route_files: list[Path]) -> NetworkGeometry:
    """Edge offsets and total length of the normal edges, in ``edge_order`` (default: route order)."""
    net = sumolib.net.readNet(str(net_file), withInternal=True)
    normal = [e for e in net.getEdges(withInternal=False)]
    order = list(edge_order or route_edge_order(route_files))
    known = {e.getID() for e in normal}
    unknown = [e for e in order if e not in known]
    if unknown:
        raise ValueError(f"edge_order names edges not in {net_file.name}: {unknown}")
    order += sorted(known.difference(order))
    offset: dict[str, float] = {}
    total = 0.0
    for edge_id in order:
        offset[edge_id] = total
        total += net.getEdge(edge_id).getLength()
    # Internal edges (":center_0") continue from the end of the normal edge feeding them.
    for edge in normal:
        for conns in edge.getOutgoing().values():
            for conn in conns:
                via = conn.getViaLaneID()
                if via:
                    internal_edge = via.rsplit("_", 1)[0]
                    offset.setdefault(internal_edge, offset[edge.getID()] + edge.getLength())
    return NetworkGeometry(offset=offset, length=total)
