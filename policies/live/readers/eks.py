"""EKS: the region's clusters, each described once (endpoint access, control-plane logging, secrets encryption,
version and tags come in one answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..resource import LiveResource, tag_dict

if TYPE_CHECKING:
    from . import LiveAccount


def clusters(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    found = []
    for name in s.pages("eks", "ListClusters", "the EKS clusters", "clusters"):
        cluster = (s.call("eks", "DescribeCluster", s.arn("eks", f"cluster/{name}"), name=name) or {})["cluster"]
        vpc = cluster.get("resourcesVpcConfig") or {}
        logged = sorted({kind for entry in (cluster.get("logging") or {}).get("clusterLogging") or []
                         if entry.get("enabled") for kind in entry.get("types") or []})
        encryption = (cluster.get("encryptionConfig") or [{}])[0]
        facts = {
            "DescribeCluster.version": cluster.get("version"),
            "DescribeCluster.resourcesVpcConfig.endpointPublicAccess": vpc.get("endpointPublicAccess"),
            "DescribeCluster.resourcesVpcConfig.endpointPrivateAccess": vpc.get("endpointPrivateAccess"),
            "DescribeCluster.resourcesVpcConfig.publicAccessCidrs": vpc.get("publicAccessCidrs"),
            "DescribeCluster.logging.clusterLogging.types": logged,
            "DescribeCluster.encryptionConfig.provider.keyArn": (encryption.get("provider") or {}).get("keyArn"),
            "DescribeCluster.encryptionConfig.resources": sorted(encryption.get("resources") or []),
        }
        found.append(LiveResource("eks-cluster", cluster["arn"], name, tag_dict(cluster.get("tags")), facts))
    return found
