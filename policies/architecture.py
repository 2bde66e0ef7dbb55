"""The architecture picture: a stack's topology drawn as a Graphviz digraph.

Clusters for the VPC (a sub-cluster per tier, a node per subnet with its AZ and CIDR), the EKS cluster (GPU pools
with their isolation and tenants, system nodes, tenant namespaces, agents with their three legs), the data buckets
with their classification and keys, the IAM roles granted something, Vault, endpoints with their WAF, and
registries and signing when the stack holds them. Edges are the paths the stack allows: tier-to-tier flows from
the network ACLs, routes out, grants from roles to buckets, Pod Identity, Vault issuing credentials, agent calls.

Every label is user data (resource names, tags, annotations) and is escaped for DOT here: backslashes doubled,
control characters dropped, never an HTML-like label; Graphviz escapes it again for SVG (see inline_svg).
"""

from __future__ import annotations

import re
from typing import Any

import graphviz

from hardstack.errors import ToolError
from hardstack.stacks.inventory import Inventory

from .network_paths import OUTSIDE, Network
from .topology import Cluster, Namespace, Topology, read

FONT = "Helvetica"
MAX_TEXT = 80
COLOURS = {
    "vpc": "#eef4fb", "tier": "#ffffff", "public": "#fdecea", "subnet": "#dbe8f6", "gateway": "#e8e8e8",
    "eks": "#eef8ee", "pool": "#c9e8c9", "namespace": "#e3f2e3", "agent": "#fff1d6", "data": "#fffbe6",
    "bucket": "#fff0b3", "key": "#f3e0ff", "identity": "#f4f4f4", "role": "#e6e6e6", "vault": "#f1ecfa",
    "vault-node": "#ddd2f3", "edge": "#fdeeee", "registry": "#e8f3f3", "outside": "#ffffff", "untrusted": "#ffd9cc",
}
FLOW = "#1f5fa8"
GRANT = "#8a6d00"
IDENTITY = "#6b4fa3"
DANGER = "#b3261e"


def text(value: Any) -> str:
    """One line of user data made literal for a DOT escString: no control characters, backslashes doubled."""
    s = re.sub(r"[\x00-\x1f\x7f]+", " ", str(value))
    if len(s) > MAX_TEXT:
        s = s[: MAX_TEXT - 1] + "…"
    return s.replace("\\", "\\\\")


def label(*lines: Any) -> graphviz.quoting.NoHtml:
    """A multi-line label from user data; never read as an HTML-like label."""
    return graphviz.nohtml("\\n".join(text(line) for line in lines if line not in (None, "")))


class _Ids:
    """Short, safe node IDs (n1, n2, …) for URNs and other keys: user data never becomes a DOT or SVG ID."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def __call__(self, key: str) -> str:
        return self._ids.setdefault(key, f"n{len(self._ids) + 1}")

    def __contains__(self, key: str) -> bool:
        return key in self._ids


def diagram(topology: Topology, title: str = "architecture") -> graphviz.Digraph:
    g = graphviz.Digraph("architecture", graph_attr={
        "compound": "true", "rankdir": "TB", "fontname": FONT, "fontsize": "12", "newrank": "true",
        "nodesep": "0.25", "ranksep": "0.6", "label": label(title), "labelloc": "t", "bgcolor": "white",
    }, node_attr={"shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "10"},
        edge_attr={"fontname": FONT, "fontsize": "9", "arrowsize": "0.7"})
    ids = _Ids()
    tier_anchor: dict[tuple[str, str], tuple[str, str]] = {}  # (VPC URN, tier) → (a node in it, its cluster name)
    for net in topology.networks:
        _network(g, net, ids, tier_anchor)
    _flows(g, topology, ids, tier_anchor)
    _endpoints(g, topology, ids, tier_anchor)
    for cluster in topology.clusters:
        _cluster(g, cluster, ids, tier_anchor)
    _data(g, topology, ids)
    _identity(g, topology, ids)
    _vault(g, topology, ids)
    _registries(g, topology, ids)
    return g


def render_svg(inventory: Inventory, title: str = "architecture") -> str:
    """The picture of an inventory as SVG text, laid out by Graphviz's `dot` (ToolError when it is missing)."""
    try:
        return diagram(read(inventory), title).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound as e:
        raise ToolError("Graphviz's `dot` is missing; the report's picture needs it: install the graphviz package "
                        "(Debian: apt-get install graphviz, or `make system-deps`)") from e
    except graphviz.CalledProcessError as e:
        raise ToolError(f"Graphviz's `dot` failed: {str(e.stderr or '').strip()[:500]}") from e


# --- network -------------------------------------------------------------------------------------------------

def _network(g: graphviz.Digraph, net: Network, ids: _Ids,
             anchors: dict[tuple[str, str], tuple[str, str]]) -> None:
    name = f"cluster_{ids(net.urn)}"
    with g.subgraph(name=name) as vpc:
        vpc.attr(label=label(f"VPC {net.name}", net.cidr), style="rounded,filled", fillcolor=COLOURS["vpc"],
                 color="#7fa7d6")
        for tier in net.tiers.values():
            tier_id = ids(f"{net.urn}#tier#{tier.name}")
            public = tier.name == "public" or any(s.public for s in tier.subnets)
            with vpc.subgraph(name=f"cluster_{tier_id}") as t:
                t.attr(label=label(f"tier: {tier.name}"), style="rounded,filled",
                       fillcolor=COLOURS["public" if public else "tier"], color="#9bb7d9")
                previous = None
                for s in tier.subnets:  # stacked: one column per tier
                    t.node(ids(s.urn), label(s.name, s.az, s.cidr, "public IPs" if s.public else None),
                           fillcolor=COLOURS["subnet"])
                    if previous:
                        t.edge(previous, ids(s.urn), style="invis")
                    previous = ids(s.urn)
                if tier.name == "public":
                    for nat in net.nat_gateways:
                        t.node(ids(nat.urn), label(f"NAT gateway {nat.name}"), fillcolor=COLOURS["gateway"])
                        t.edge(previous or ids(nat.urn), ids(nat.urn), style="invis")
                        previous = ids(nat.urn)
                if tier.name == "endpoints" and net.interface_endpoints:
                    t.node(ids(f"{net.urn}#interface-endpoints"),
                           label("interface endpoints", *_wrap(net.interface_endpoints)),
                           fillcolor=COLOURS["gateway"])
            if tier.subnets:
                anchors[(net.urn, tier.name)] = (ids(tier.subnets[0].urn), f"cluster_{tier_id}")
        top = ids(f"{net.urn}#top")  # the tiers side by side, below one invisible point
        vpc.node(top, label(""), shape="point", style="invis", width="0", height="0")
        for t in net.tiers:
            if (net.urn, t) in anchors:
                vpc.edge(top, anchors[(net.urn, t)][0], style="invis")
        if net.s3_gateway:
            vpc.node(ids(net.s3_gateway), label("S3 gateway endpoint", "this account's buckets only"),
                     fillcolor=COLOURS["gateway"])
        if net.internet_gateway is not None:
            vpc.node(ids(net.internet_gateway.urn), label(f"internet gateway {net.internet_gateway.name}"),
                     fillcolor=COLOURS["gateway"])


def _wrap(items: list[str], width: int = 40) -> list[str]:
    lines, line = [], ""
    for item in items:
        candidate = f"{line}, {item}" if line else item
        if len(candidate) > width and line:
            lines.append(line + ",")
            line = item
        else:
            line = candidate
    return lines + ([line] if line else [])


def _flows(g: graphviz.Digraph, topology: Topology, ids: _Ids,
           anchors: dict[tuple[str, str], tuple[str, str]]) -> None:
    """Tier-to-tier flows (merged into one two-way edge where both directions carry the same ports), and the
    ways out: to S3 through the gateway endpoint, to the internet through the internet gateway."""
    nets = {n.urn: n for n in topology.networks}
    pairs = {(f.network, f.source, f.target): f.ports for f in topology.flows}
    drawn = set()
    internet = "internet"
    for (vpc, source, target), ports in pairs.items():
        net = nets[vpc]
        if (vpc, source) not in anchors:
            continue
        tail, tail_cluster = anchors[(vpc, source)]
        if target == OUTSIDE:
            if source in net.s3_gateway_tiers and net.s3_gateway:
                g.edge(tail, ids(net.s3_gateway), label=label(ports), ltail=tail_cluster, color=FLOW,
                       fontcolor=FLOW)
            if source in net.internet_tiers and net.internet_gateway is not None:
                g.edge(tail, ids(net.internet_gateway.urn), label=label(ports), ltail=tail_cluster, color=DANGER,
                       fontcolor=DANGER)
                g.node(ids(internet), label("internet"), shape="ellipse", fillcolor=COLOURS["outside"])
                g.edge(ids(net.internet_gateway.urn), ids(internet), color=DANGER)
            continue
        if (vpc, target) not in anchors or (vpc, target, source) in drawn:
            continue
        head, head_cluster = anchors[(vpc, target)]
        both = pairs.get((vpc, target, source)) == ports
        g.edge(tail, head, label=label(ports), ltail=tail_cluster, lhead=head_cluster, color=FLOW, fontcolor=FLOW,
               dir="both" if both else "forward", constraint="false")
        if both:  # the way back is drawn with it
            drawn.add((vpc, source, target))
    for net in topology.networks:
        if net.s3_gateway and topology.buckets:
            g.edge(ids(net.s3_gateway), ids(topology.buckets[0].urn), lhead="cluster_data", color=FLOW,
                   label=label("S3"), fontcolor=FLOW)


def _endpoints(g: graphviz.Digraph, topology: Topology, ids: _Ids,
               anchors: dict[tuple[str, str], tuple[str, str]]) -> None:
    for ep in topology.endpoints:
        waf = ", ".join(r.name for r in topology.web_acls if r.urn in ep.web_acls)
        g.node(ids(ep.urn), label(f"endpoint {ep.name}", "internet-facing" if ep.internet_facing else "internal",
                                  f"WAF: {waf}" if waf else "no WAF"),
               fillcolor=COLOURS["edge"], color=DANGER if ep.internet_facing and not waf else "black")
        for tier in sorted(ep.tiers):
            if tier in anchors:
                head, cluster = anchors[tier]
                g.edge(ids(ep.urn), head, lhead=cluster, label=label("in"), style="dashed")
        if ep.internet_facing:
            g.node(ids("clients"), label("clients (internet)"), shape="ellipse", fillcolor=COLOURS["outside"])
            g.edge(ids("clients"), ids(ep.urn), color=DANGER)
    for acl in topology.web_acls:
        g.node(ids(acl.urn), label(f"WAF web ACL {acl.name}"), fillcolor=COLOURS["edge"], shape="octagon")
        for ep in topology.endpoints:
            if acl.urn in ep.web_acls:
                g.edge(ids(acl.urn), ids(ep.urn), label=label("protects"))


# --- cluster -------------------------------------------------------------------------------------------------

def _cluster(g: graphviz.Digraph, cluster: Cluster, ids: _Ids,
             anchors: dict[tuple[str, str], tuple[str, str]]) -> None:
    plane = ids(cluster.urn)
    with g.subgraph(name=f"cluster_{ids(cluster.urn + '#eks')}") as c:
        c.attr(label=label(f"EKS cluster {cluster.name}"), style="rounded,filled", fillcolor=COLOURS["eks"],
               color="#7fbf7f")
        c.node(plane, label("control plane", f"Kubernetes {cluster.version}" if cluster.version else None,
                            "private API endpoint" if cluster.private else "PUBLIC API endpoint",
                            "secrets encrypted with a CMK" if cluster.secrets_key
                            else "secrets NOT envelope-encrypted"),
               fillcolor=COLOURS["namespace"], color="black" if cluster.private else DANGER)
        for pool in cluster.pools:
            tenants = ", ".join(pool.tenants) if pool.tenants else "any"
            c.node(ids(pool.urn), label(f"GPU pool {pool.name}", f"isolation: {pool.isolation}", f"tenants: {tenants}",
                                        f"tainted for {pool.tenant_taint} only" if pool.tenant_taint
                                        else "no tenant taint",
                                        ", ".join(pool.instance_types),
                                        f"up to {pool.max_size} nodes" if pool.max_size is not None else None),
                   fillcolor=COLOURS["pool"], shape="box3d",
                   color=DANGER if pool.isolation == "time-slicing" and not pool.tenant_taint else "black")
        for nodes in cluster.system_nodes:
            c.node(ids(nodes.urn), label(f"system nodes {nodes.name}", "no taint: cluster services, CPU workloads",
                                         ", ".join(nodes.instance_types),
                                         f"up to {nodes.max_size} nodes" if nodes.max_size is not None else None),
                   fillcolor=COLOURS["pool"], shape="box3d")
        for ns in cluster.namespaces:
            c.node(ids(ns.urn), _namespace_label(ns), fillcolor=COLOURS["agent" if ns.agent else "namespace"],
                   shape="folder")
    for group in [*cluster.pools, *cluster.system_nodes]:
        for tier in sorted(group.tiers):
            if tier in anchors:
                head, cluster_name = anchors[tier]
                g.edge(ids(group.urn), head, lhead=cluster_name, label=label("nodes in"), style="dashed")
    for pool in cluster.pools:
        for ns in cluster.namespaces:
            if ns.tenant and ns.tenant in pool.tenants:
                g.edge(ids(ns.urn), ids(pool.urn), label=label("schedules on"))
    for tier in sorted(cluster.tiers):
        if tier in anchors:
            head, cluster_name = anchors[tier]
            g.edge(plane, head, lhead=cluster_name, label=label("API ENIs"), style="dotted")
    _agents(g, cluster, ids)


def _namespace_label(ns: Namespace) -> graphviz.quoting.NoHtml:
    if ns.agent:
        legs = ns.legs
        return label(f"agent {ns.agent}", f"namespace {ns.name}",
                     "private data: " + (", ".join(legs.get("private", ())) or "none"),
                     "untrusted input: " + (", ".join(legs.get("untrusted", ())) or "none"),
                     "external communication: " + (", ".join(legs.get("egress", ())) or "none"))
    return label(f"namespace {ns.name}", f"tenant {ns.tenant}",
                 f"GPU quota {ns.gpu_quota}" if ns.gpu_quota is not None else "no GPU quota")


def _agents(g: graphviz.Digraph, cluster: Cluster, ids: _Ids) -> None:
    by_agent = {ns.agent: ns for ns in cluster.namespaces if ns.agent}
    for ns in by_agent.values():
        for callee in ns.legs.get("calls", ()):
            if callee in by_agent:
                g.edge(ids(ns.urn), ids(by_agent[callee].urn), label=label("calls"), color=IDENTITY)
        for source in ns.legs.get("untrusted", ()):
            node = ids(f"untrusted#{source}")
            g.node(node, label("untrusted input", source), shape="note", fillcolor=COLOURS["untrusted"])
            g.edge(node, ids(ns.urn), color=DANGER)
        for host in ns.legs.get("egress", ()):
            node = ids(f"egress#{host}")
            g.node(node, label("external host", host), shape="ellipse", fillcolor=COLOURS["outside"])
            g.edge(ids(ns.urn), node, label=label("HTTPS via its allowlist proxy"), color=DANGER)


# --- data, identity, Vault, registries ------------------------------------------------------------------------

def _data(g: graphviz.Digraph, topology: Topology, ids: _Ids) -> None:
    if not topology.buckets and not topology.keys:
        return
    with g.subgraph(name="cluster_data") as d:
        d.attr(label=label("data (S3) and keys (KMS)"), style="rounded,filled", fillcolor=COLOURS["data"],
               color="#d9c25a")
        for b in topology.buckets:
            d.node(ids(b.urn), label(f"bucket {b.name}", f"purpose: {b.purpose}" if b.purpose else None,
                                     f"classification: {b.classification}" if b.classification else None,
                                     "object lock" if b.object_lock else None,
                                     None if b.key else "no customer-managed key"),
                   fillcolor=COLOURS["bucket"], shape="cylinder", color="black" if b.key else DANGER)
        for key in topology.keys.values():
            d.node(ids(key.urn), label(f"KMS key {key.name}", "rotation on" if key.rotation else "NO rotation"),
                   fillcolor=COLOURS["key"], shape="component")
    for b in topology.buckets:
        if b.key and b.key in topology.keys:
            g.edge(ids(b.urn), ids(b.key), label=label("SSE-KMS"), style="dashed")
        if b.logs_to and b.logs_to in ids:
            g.edge(ids(b.urn), ids(b.logs_to), label=label("access logs"), style="dotted")
    for cluster in topology.clusters:
        if cluster.secrets_key and cluster.secrets_key in topology.keys:
            g.edge(ids(cluster.urn), ids(cluster.secrets_key), label=label("secrets, node disks"), style="dashed")


def _identity(g: graphviz.Digraph, topology: Topology, ids: _Ids) -> None:
    if not topology.roles:
        return
    with g.subgraph(name="cluster_identity") as i:
        i.attr(label=label("IAM roles"), style="rounded,filled", fillcolor=COLOURS["identity"], color="#aaaaaa")
        for role in topology.roles.values():
            i.node(ids(role.urn), label(f"role {role.name}"), fillcolor=COLOURS["role"])
    for grant in topology.grants:
        if grant.role in topology.roles:
            denied = grant.access == "denied"
            g.edge(ids(grant.role), ids(grant.bucket), label=label(grant.access), color=DANGER if denied else GRANT,
                   fontcolor=DANGER if denied else GRANT, style="dashed" if denied else "solid",
                   arrowhead="tee" if denied else "normal")
    by_name = {ns.name: ns for ns in topology.namespaces}
    for namespace, role in topology.pod_identities:
        if namespace in by_name and role in topology.roles:
            g.edge(ids(by_name[namespace].urn), ids(role), label=label("Pod Identity"), color=IDENTITY,
                   fontcolor=IDENTITY)
    for role, cluster in topology.access_entries:
        if role in topology.roles and cluster in ids:
            g.edge(ids(role), ids(cluster), label=label("access entry"), color=IDENTITY, fontcolor=IDENTITY)


VAULT_NODES = {
    "vault:jwt/authBackend:AuthBackend": "sign-in",
    "vault:index/authBackend:AuthBackend": "auth method",
    "vault:aws/secretBackend:SecretBackend": "AWS secrets engine",
    "vault:index/mount:Mount": "secrets engine",
    "vault:index/audit:Audit": "audit device",
}


def _vault(g: graphviz.Digraph, topology: Topology, ids: _Ids) -> None:
    if not topology.vault:
        return
    shown = [r for r in topology.vault if r.type in VAULT_NODES]
    policies = sum(r.type == "vault:index/policy:Policy" for r in topology.vault)
    roles = sum(r.type.endswith("Role") for r in topology.vault)
    with g.subgraph(name="cluster_vault") as v:
        v.attr(label=label("Vault", f"{policies} policies, {roles} roles"),
               style="rounded,filled", fillcolor=COLOURS["vault"], color="#9a86c9")
        for r in shown:
            kind = str(r.get("type") or "")
            v.node(ids(r.urn), label(f"{VAULT_NODES[r.type]} {r.name}", kind,
                                     "login MFA enforced" if r.urn in topology.vault_mfa else None),
                   fillcolor=COLOURS["vault-node"])
    for engine, name, role in topology.vault_credentials:
        if engine in ids and role in topology.roles:
            g.edge(ids(engine), ids(role), label=label(f"issues credentials ({name})"), color=IDENTITY,
                   fontcolor=IDENTITY)
    by_name = {ns.name: ns for ns in topology.namespaces}
    for method, name, namespace in topology.vault_logins:
        if method in ids and namespace in by_name:
            g.edge(ids(by_name[namespace].urn), ids(method), label=label(f"workload login ({name})"),
                   color=IDENTITY, fontcolor=IDENTITY, style="dashed", constraint="false")


def _registries(g: graphviz.Digraph, topology: Topology, ids: _Ids) -> None:
    if not topology.registries and not topology.signing_profiles:
        return
    with g.subgraph(name="cluster_registries") as r:
        r.attr(label=label("registries and signing"), style="rounded,filled", fillcolor=COLOURS["registry"],
               color="#6fb3b3")
        for repo in topology.registries:
            mutability = str(repo.get("imageTagMutability") or "MUTABLE")
            scan = (repo.get("imageScanningConfiguration") or {}).get("scanOnPush")
            r.node(ids(repo.urn), label(f"registry {repo.name}", f"tags: {mutability.lower()}",
                                        "scan on push" if scan else "no scan on push"),
                   fillcolor=COLOURS["registry"], shape="cylinder")
        for profile in topology.signing_profiles:
            r.node(ids(profile.urn), label(f"signing profile {profile.name}", str(profile.get("platformId") or "")),
                   fillcolor=COLOURS["registry"], shape="note")
    for repo in topology.registries + topology.signing_profiles:
        for ref in repo.references:
            if ref.resource in topology.keys or ref.resource in ids:
                g.edge(ids(repo.urn), ids(ref.resource), style="dashed")
