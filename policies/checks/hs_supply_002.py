"""HS_SUPPLY_002: image signature verification is enforced, not audited (evaluated by the gate)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_SUPPLY_002",
    title="Image signature verification is enforced, not audited",
    severity="HIGH",
    area="supply chain",
    rationale="In Audit mode an unsigned or wrongly signed image is admitted and only reported: the check sees the "
    "compromise and lets it run. A webhook that fails open (failurePolicy Ignore) admits everything while Kyverno "
    "is down or slow, which an attacker can arrange.",
    remediation="Set `failureAction: Enforce` on every verifyImages entry (and no Audit override), keep the "
    "policy's webhook `failurePolicy: Fail` (hardstack's ImageAdmission does both).",
    owasp_llm=("LLM03: Supply Chain",),
    mitre_atlas=("AML.T0010: ML Supply Chain Compromise",),
    resources=("ClusterPolicy",),
)


def evaluate(objects, version):  # type: ignore[no-untyped-def]
    from hardstack.policies.image_admission import cluster_policies, fails_open, signature_verifications

    for address, policy in cluster_policies(objects):
        verifications = signature_verifications(policy)
        if not verifications:
            continue
        audited = sorted({rule for rule, action in verifications if action != "Enforce"})
        problems = [f"rules {audited} only audit" if audited else "",
                    "its webhook fails open (failurePolicy: Ignore)" if fails_open(policy) else ""]
        detail = "; ".join(p for p in problems if p) or None
        yield address, "failed" if detail else "passed", detail


KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
SIGNED = ("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/*",)


def _policy(change=None) -> None:  # type: ignore[no-untyped-def]
    import pulumi_kubernetes as k8s

    from hardstack.modules.admission import verify_images_spec

    spec = verify_images_spec(SIGNED, KEY_ARN)
    if change:
        change(spec)
    k8s.apiextensions.CustomResource("verify", api_version="kyverno.io/v1", kind="ClusterPolicy",
                                     metadata={"name": "verify-image-signatures"}, spec=spec)


def passing_enforced() -> None:
    _policy()


def failing_audit() -> None:
    _policy(lambda s: s["rules"][0]["verifyImages"][0].update(failureAction="Audit", mutateDigest=False))


def failing_audit_by_default() -> None:
    """No failureAction on the entry and none on the policy: Kyverno's default is Audit."""
    _policy(lambda s: s["rules"][0]["verifyImages"][0].pop("failureAction"))


def failing_policy_level_audit_override() -> None:
    def change(s):  # type: ignore[no-untyped-def]
        s["rules"][0]["verifyImages"][0].pop("failureAction")
        s["validationFailureAction"] = "Enforce"
        s["validationFailureActionOverrides"] = [{"action": "Audit", "namespaces": ["team"]}]

    _policy(change)


def failing_fails_open() -> None:
    _policy(lambda s: s["webhookConfiguration"].update(failurePolicy="Ignore"))
