"""The line's main path: the chain of nodes and links from source to delivery, with its chainage.

Chainage is cumulative pipe length along the path from its source, m; pumps and valves add no
length. A leak or rupture given by km is placed on this path, and the pressure profile and MAOP
margin are reported along it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pumptwin.twin.hydraulic.network import NetworkError
from pumptwin.twin.hydraulic.solver import FloatArray, HydraulicModel


@dataclass(frozen=True)
class LinePath:
    """The main path of a line from its source to its delivery, for profiles and chainage.

    Attributes:
        nodes: Node indices along the path, source first.
        links: Link indices along the path (one fewer than nodes).
        forward: For each link, whether the path runs from its start to its end node.
        chainage_m: Cumulative pipe length at each node from the source, in m (pumps and
            valves add no length).
    """

    nodes: tuple[int, ...]
    links: tuple[int, ...]
    forward: tuple[bool, ...]
    chainage_m: FloatArray

    @property
    def source(self) -> int:
        """Index of the source node."""
        return self.nodes[0]

    @property
    def delivery(self) -> int:
        """Index of the delivery node."""
        return self.nodes[-1]

    @property
    def delivery_link(self) -> int:
        """Index of the last link, whose flow (along the path) is the throughput."""
        return self.links[-1]


def main_path(model: HydraulicModel, source: str | None = None, delivery: str | None = None) -> LinePath:
    """The shortest path by pipe length between a source and a delivery node, ignoring link status.

    By default the two reservoirs or tanks farthest apart along the pipes are taken (with one
    fixed node: it and the junction farthest from it), oriented so that pumps on the path are
    run through from suction to discharge.

    Args:
        model: Compiled network.
        source: Source node id (default as above).
        delivery: Delivery node id (default as above).

    Raises:
        NetworkError: When a node does not exist or no path joins the two.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    net = model.network
    for nid in (source, delivery):
        if nid is not None and nid not in model.node_index:
            raise NetworkError(f"line path: node {nid!r} does not exist")
    npipe = len(net.pipes)
    length = np.array([p.length_m for p in net.pipes] + [1e-6] * (model.n_links - npipe))
    n1, n2 = model.link_n1, model.link_n2
    graph = coo_matrix(
        (np.concatenate([length, length]), (np.concatenate([n1, n2]), np.concatenate([n2, n1]))),
        shape=(model.n_nodes, model.n_nodes),
    ).tocsr()
    fixed = list(range(model.n_junctions, model.n_nodes))
    if source is not None and delivery is not None:
        a, b = model.node_index[source], model.node_index[delivery]
    else:
        ends = fixed if len(fixed) > 1 else list(range(model.n_junctions))
        starts = [model.node_index[source]] if source is not None else fixed
        targets = [model.node_index[delivery]] if delivery is not None else ends
        dist = np.asarray(dijkstra(graph, indices=starts))
        dist[~np.isfinite(dist)] = -1.0
        sub = dist[:, targets]
        i, j = np.unravel_index(int(np.argmax(sub)), sub.shape)
        a, b = starts[i], targets[j]
    dist_a, pred = dijkstra(graph, indices=a, return_predecessors=True)
    if not np.isfinite(dist_a[b]) or a == b:
        raise NetworkError(f"line path: no path from {model.node_ids[a]!r} to {model.node_ids[b]!r}")
    nodes = [b]
    while nodes[-1] != a:
        nodes.append(int(pred[nodes[-1]]))
    nodes.reverse()
    links, forward = _path_links(model, nodes, length)
    pump_links = set(model.pump_link.tolist())
    backwards = [not f for k, f in zip(links, forward, strict=True) if k in pump_links]
    if backwards and all(backwards) and source is None and delivery is None:
        nodes.reverse()
        links, forward = _path_links(model, nodes, length)
    steps = [length[k] if k < npipe else 0.0 for k in links]
    return LinePath(tuple(nodes), tuple(links), tuple(forward), np.concatenate([[0.0], np.cumsum(steps)]))


def _path_links(model: HydraulicModel, nodes: list[int], length: FloatArray) -> tuple[list[int], list[bool]]:
    links: list[int] = []
    forward: list[bool] = []
    for a, b in zip(nodes[:-1], nodes[1:], strict=True):
        cand = np.flatnonzero(
            ((model.link_n1 == a) & (model.link_n2 == b)) | ((model.link_n1 == b) & (model.link_n2 == a))
        )
        k = int(cand[np.argmin(length[cand])])
        links.append(k)
        forward.append(bool(model.link_n1[k] == a))
    return links, forward
