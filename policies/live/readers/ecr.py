"""ECR: the region's repositories with their tags, and the registry's scanning configuration (which, when it is
enhanced, decides scanning for every repository and overrides the repositories' own scan-on-push)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..resource import LiveResource, tag_dict

if TYPE_CHECKING:
    from . import LiveAccount


def registry_scanning(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    answer = s.call("ecr", "GetRegistryScanningConfiguration", "the ECR registry") or {}
    config = answer.get("scanningConfiguration") or {}
    # the registry has no ARN of its own: its results name it arn:<partition>:ecr:<region>:<account>:registry
    return [LiveResource(
        "ecr-registry-scanning", s.arn("ecr", "registry"), answer.get("registryId") or s.account, facts={
            "GetRegistryScanningConfiguration.scanType": config.get("scanType"),
            "GetRegistryScanningConfiguration.rules": config.get("rules") or []})]


def repositories(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    (registry,) = account.resources("ecr-registry-scanning")
    found = []
    for repo in s.pages("ecr", "DescribeRepositories", "the ECR repositories", "repositories"):
        arn = repo["repositoryArn"]
        tags = (s.call("ecr", "ListTagsForResource", arn, resourceArn=arn) or {}).get("tags")
        encryption = repo.get("encryptionConfiguration") or {}
        facts = {
            "DescribeRepositories.imageTagMutability": repo.get("imageTagMutability"),
            "DescribeRepositories.imageScanningConfiguration.scanOnPush":
                (repo.get("imageScanningConfiguration") or {}).get("scanOnPush"),
            "DescribeRepositories.encryptionConfiguration.encryptionType": encryption.get("encryptionType"),
            "DescribeRepositories.encryptionConfiguration.kmsKey": encryption.get("kmsKey"),
            **registry.facts,
        }
        found.append(LiveResource("ecr-repository", arn, repo["repositoryName"], tag_dict(tags), facts))
    return found
