"""HS_SUPPLY_001: a cluster verifies image signatures at admission (evaluated by the gate over the stack's
Kubernetes objects)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_SUPPLY_001",
    title="The cluster verifies image signatures at admission",
    severity="HIGH",
    area="supply chain",
    rationale="Without a signature check at admission, any image that reaches the registry or a node runs: a "
    "tampered model server, a poisoned base image or a pushed backdoor is indistinguishable from what CI built. "
    "Registry permissions alone do not stop an image pushed by a stolen credential.",
    remediation="Declare a Kyverno ClusterPolicy with a `verifyImages` rule on Pods whose attestors name the signing "
    "key and which requires the signature (hardstack's ImageAdmission does, for the blueprint's `registry`).",
    owasp_llm=("LLM03: Supply Chain",),
    mitre_atlas=("AML.T0010: ML Supply Chain Compromise",),
    resources=("Namespace", "ClusterPolicy"),
)


def evaluate(objects, version):  # type: ignore[no-untyped-def]
    from hardstack.policies.image_admission import cluster_policies, namespaces, signature_verifications

    verifying = [address for address, policy in cluster_policies(objects) if signature_verifications(policy)]
    if verifying:
        for address in verifying:
            yield address, "passed", None
        return
    for address in namespaces(objects):
        yield address, "failed", ("no ClusterPolicy requires a signature of the images Pods run "
                                  "(a verifyImages rule on Pods with attestors and `required` not false)")


KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
SIGNED = ("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/*",)


def _policy(spec) -> None:  # type: ignore[no-untyped-def]
    import pulumi_kubernetes as k8s

    k8s.core.v1.Namespace("team", metadata={"name": "team"})
    if spec is not None:
        k8s.apiextensions.CustomResource("verify", api_version="kyverno.io/v1", kind="ClusterPolicy",
                                         metadata={"name": "verify-image-signatures"}, spec=spec)


def passing_enforced() -> None:
    from hardstack.modules.admission import verify_images_spec

    _policy(verify_images_spec(SIGNED, KEY_ARN))


def passing_audited() -> None:
    from hardstack.modules.admission import verify_images_spec

    spec = verify_images_spec(SIGNED, KEY_ARN)
    spec["rules"][0]["verifyImages"][0].update(failureAction="Audit", mutateDigest=False)
    _policy(spec)


def failing_no_policy() -> None:
    _policy(None)


def failing_signature_not_required() -> None:
    from hardstack.modules.admission import verify_images_spec

    spec = verify_images_spec(SIGNED, KEY_ARN)
    spec["rules"][0]["verifyImages"][0]["required"] = False
    _policy(spec)


def failing_without_attestors() -> None:
    from hardstack.modules.admission import verify_images_spec

    spec = verify_images_spec(SIGNED, KEY_ARN)
    spec["rules"][0]["verifyImages"][0]["attestors"] = []
    _policy(spec)
