"""Encrypted buckets: the right CMK, never public, TLS-only, logged, locked where required, tagged, least-privilege
grants.

Every test asserts the security property itself and its wiring (which resource an input was computed from), so
removing the property from `modules/storage.py` or `stacks/program.py` makes a test here fail.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable

import pytest

from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID

from .helpers import policy, ref_attr, statements

STACK = "llm-inference"
REGION = "us-east-1"

BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

DATA_BUCKETS = {
    # bucket -> (classification, purpose, key component)
    "training-data": ("regulated", "training-data", "data-regulated"),
    "model-artifacts": ("confidential", "model-artifacts", "data-confidential"),
    "inference-logs": ("confidential", "inference-logs", "data-confidential"),
    "audit-logs": ("confidential", "audit-logs", "data-confidential"),
}
"""The buckets llm-inference declares (blueprint classification: confidential)."""
ACCESS_LOGS = "access-logs"
ALL_BUCKETS = {**DATA_BUCKETS, ACCESS_LOGS: ("confidential", "audit-logs", "logs")}
LOCKED = {"training-data", "audit-logs", ACCESS_LOGS}
"""Regulated data and audit logs get COMPLIANCE retention by default; the access log bucket always does."""
ENDPOINT_LOGS = "endpoint-logs"
"""The load balancers' access log bucket (llm-inference serves an endpoint): held to every bucket property here
but the CMK. Elastic Load Balancing delivers access logs only to SSE-S3 buckets, so it is encrypted with S3-managed
keys (AES256), by design (a design exception of EndpointLogs; its delivery policy is asserted in
test_endpoints)."""
TRAIL_LOGS = "audit-trail-logs"
"""The audit trail's bucket (modules/audit.py TrailBucket): held to every bucket property here, under the trail's
own key, locked like the access logs, without an S3 bucket key (the trail key's policy requires CloudTrail's
per-file encryption context); only its trail may write (asserted in test_audit)."""
EVERY_BUCKET = [*ALL_BUCKETS, ENDPOINT_LOGS, TRAIL_LOGS]


# --- helpers ----------------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def bucket(inv: Inventory, name: str) -> Resource:
    """The aws:s3/bucket:Bucket of the bucket component `name`."""
    return inv.named(f"{name}-bucket", BUCKET)


def key(inv: Inventory, component: str) -> Resource:
    return inv.named(f"{component}-key", "aws:kms/key:Key")


def attached(inv: Inventory, b: Resource, type_token: str) -> list[Resource]:
    """Resources of `type_token` whose `bucket` input is computed from bucket `b` (a reference, not a name)."""
    found = []
    for r in inv.of_type(type_token):
        refs = [x for x in r.references if x.path == ("bucket",)]
        if any(x.resource == b.urn for x in refs):
            urn, attribute = ref_attr(r, "bucket")
            assert urn == b.urn and attribute in ("bucket", "id"), (r.name, urn, attribute)
            assert r.get("bucket") == b.outputs["bucket"]
            found.append(r)
    return found


def one(inv: Inventory, b: Resource, type_token: str) -> Resource:
    found = attached(inv, b, type_token)
    assert len(found) == 1, f"{b.name}: {len(found)} {type_token} attached"
    return found[0]


def policy_refs(r: Resource, key_: str = "policy") -> set[tuple[str, str | None]]:
    return {(x.resource, x.attribute) for x in r.references if x.path == (key_,)}


# A small evaluator of the Deny statements of a bucket policy, with AWS's semantics for missing keys: a
# negated operator (StringNotEquals...) matches when the key is absent, `...IfExists` matches when it is
# absent, every other operator does not match.


def _condition_matches(op: str, expected: Any, ctx: dict[str, str], key_: str) -> bool:
    values = [str(v) for v in as_list(expected)]
    if op == "Null":
        return (key_ not in ctx) == (values[0].lower() == "true")
    if_exists = op.endswith("IfExists")
    base = op.removesuffix("IfExists")
    if key_ not in ctx:
        return if_exists or base.startswith(("StringNot", "ArnNot"))
    actual = ctx[key_]
    if base == "Bool":
        return actual.lower() in [v.lower() for v in values]
    if base == "StringEquals":
        return actual in values
    if base == "StringNotEquals":
        return actual not in values
    if base == "NumericLessThan":
        return any(float(actual) < float(v) for v in values)
    raise AssertionError(f"the evaluator does not know condition operator {op}")


def denied(doc: dict[str, Any], action: str, resource: str, ctx: dict[str, str]) -> list[str]:
    """Sids of the Deny statements that match a request by an arbitrary principal."""
    hits = []
    for st in doc["Statement"]:
        if st["Effect"] != "Deny" or st.get("Principal") != "*":
            continue
        if not any(fnmatch.fnmatchcase(action, a) for a in as_list(st["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in as_list(st["Resource"])):
            continue
        if all(
            _condition_matches(op, v, ctx, k) for op, kv in st.get("Condition", {}).items() for k, v in kv.items()
        ):
            hits.append(st.get("Sid", "?"))
    return hits


TLS12 = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.2"}


# --- encryption -------------------------------------------------------------------------------------------


def test_every_bucket_is_encrypted_with_the_key_of_its_classification(reference_inventory: Inventory) -> None:
    """Each bucket's default encryption is SSE-KMS with bucket keys, and its key id is computed from the `arn` of
    THE key of the bucket's class (regulated training data never under the confidential key; access logs under
    the logs key)."""
    inv = reference_inventory
    assert {b.name.removesuffix("-bucket") for b in inv.of_type(BUCKET)} == set(EVERY_BUCKET)
    elb_logs = one(inv, bucket(inv, ENDPOINT_LOGS), SSE)  # SSE-S3 by design, and nothing weaker
    assert elb_logs.get("rules") == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    for name, (_, _, key_component) in ALL_BUCKETS.items():
        b, k = bucket(inv, name), key(inv, key_component)
        sse = one(inv, b, SSE)
        (rule,) = sse.get("rules")
        default = rule["applyServerSideEncryptionByDefault"]
        assert default["sseAlgorithm"] == "aws:kms", name
        assert rule["bucketKeyEnabled"] is True, name
        path = ("rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
        assert ref_attr(sse, *path) == (k.urn, "arn"), f"{name} is not encrypted with {k.name}"
        assert default["kmsMasterKeyId"] == k.outputs["arn"]
    trail = one(inv, bucket(inv, TRAIL_LOGS), SSE)
    assert ref_attr(trail, "rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId") == (
        key(inv, "audit-trail").urn, "arn")
    assert trail.get("rules", 0, "bucketKeyEnabled") is False
    assert len(inv.of_type(SSE)) == len(EVERY_BUCKET)


def test_regulated_and_confidential_data_use_different_keys(reference_inventory: Inventory) -> None:
    """training-data (regulated) and model-artifacts (confidential) are encrypted with different CMKs: the
    regulated key's ARN is in no confidential bucket's encryption or policy."""
    inv = reference_inventory
    regulated = key(inv, "data-regulated")
    for name, (cls, _, _) in DATA_BUCKETS.items():
        b = bucket(inv, name)
        sse_ref = ref_attr(one(inv, b, SSE), "rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
        bp = one(inv, b, POLICY)
        uses_regulated = sse_ref[0] == regulated.urn or regulated.outputs["arn"] in bp.get("policy")
        assert uses_regulated == (cls == "regulated"), name


# --- public access, ownership, versioning -----------------------------------------------------------------


def test_public_access_is_blocked_on_every_bucket(reference_inventory: Inventory) -> None:
    """All four public access block flags are on, on a block wired to each bucket."""
    inv = reference_inventory
    for name in EVERY_BUCKET:
        pab = one(inv, bucket(inv, name), PAB)
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
            assert pab.get(flag) is True, (name, flag)


def test_acls_disabled_versioning_on_and_no_force_destroy(reference_inventory: Inventory) -> None:
    """Each bucket has ACLs disabled (BucketOwnerEnforced), versioning Enabled, and cannot be destroyed with its
    objects (forceDestroy false)."""
    inv = reference_inventory
    for name in EVERY_BUCKET:
        b = bucket(inv, name)
        assert b.get("forceDestroy") is False, name
        assert one(inv, b, OWNERSHIP).get("rule") == {"objectOwnership": "BucketOwnerEnforced"}, name
        assert one(inv, b, VERSIONING).get("versioningConfiguration", "status") == "Enabled", name


# --- bucket policy ----------------------------------------------------------------------------------------


def test_policy_denies_plain_http_and_old_tls_on_this_bucket(reference_inventory: Inventory) -> None:
    """Every bucket's policy denies everyone any S3 action without TLS (aws:SecureTransport false) and below
    TLS 1.2, on the bucket's own ARN and all its objects (computed from this bucket's `arn`)."""
    inv = reference_inventory
    for name in EVERY_BUCKET:
        b = bucket(inv, name)
        arn = b.outputs["arn"]
        bp = one(inv, b, POLICY)
        assert (b.urn, "arn") in policy_refs(bp), f"{name}: policy not computed from the bucket's ARN"
        sts = statements(bp)

        insecure = sts["DenyInsecureTransport"]
        assert insecure["Effect"] == "Deny" and insecure["Principal"] == "*"
        assert "s3:*" in as_list(insecure["Action"])
        assert sorted(as_list(insecure["Resource"])) == sorted([arn, f"{arn}/*"]), name
        assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

        old_tls = sts["DenyOutdatedTls"]
        assert old_tls["Effect"] == "Deny" and old_tls["Principal"] == "*"
        assert "s3:*" in as_list(old_tls["Action"])
        assert sorted(as_list(old_tls["Resource"])) == sorted([arn, f"{arn}/*"]), name
        assert old_tls["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}


def test_policy_denies_uploads_not_encrypted_with_this_stacks_key(reference_inventory: Inventory) -> None:
    """Uploads are denied unless SSE-KMS, and unless with the bucket's own key: the key ARN in the policy is the
    `arn` output of THE key of the bucket's class (and the policy input is computed from it)."""
    inv = reference_inventory
    all_keys = {k.urn for k in inv.of_type("aws:kms/key:Key")}
    for name, (_, _, key_component) in ALL_BUCKETS.items():
        b, k = bucket(inv, name), key(inv, key_component)
        bp = one(inv, b, POLICY)
        sts = statements(bp)
        objects = f"{b.outputs['arn']}/*"

        present = {"Null": {"s3:x-amz-server-side-encryption": "false"}}
        other_enc = sts["DenyUploadsWithOtherEncryption"]
        assert other_enc["Effect"] == "Deny" and other_enc["Principal"] == "*"
        assert as_list(other_enc["Action"]) == ["s3:PutObject"] and other_enc["Resource"] == objects
        assert other_enc["Condition"] == {
            **present,
            "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
        }

        other_key = sts["DenyUploadsWithAnotherKey"]
        assert other_key["Effect"] == "Deny" and other_key["Principal"] == "*"
        assert as_list(other_key["Action"]) == ["s3:PutObject"] and other_key["Resource"] == objects
        assert other_key["Condition"] == {
            **present,
            "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": k.outputs["arn"]},
        }

        referenced_keys = {urn for urn, attr in policy_refs(bp) if urn in all_keys}
        assert referenced_keys == {k.urn}, f"{name}: policy names another key"
        assert (k.urn, "arn") in policy_refs(bp)


def test_policy_decisions_for_concrete_requests(reference_inventory: Inventory) -> None:
    """Evaluated against concrete requests, each bucket policy denies plain HTTP, TLS 1.1, SSE-S3 uploads and
    uploads under another key, and lets through TLS 1.2+ reads and uploads that name the bucket's own key."""
    inv = reference_inventory
    other = key(inv, "data-confidential").outputs["arn"]
    for name, (_, _, key_component) in ALL_BUCKETS.items():
        b = bucket(inv, name)
        own = key(inv, key_component).outputs["arn"]
        foreign = other if own != other else key(inv, "data-regulated").outputs["arn"]
        doc = policy(one(inv, b, POLICY))
        arn, obj = b.outputs["arn"], f"{b.outputs['arn']}/data.parquet"

        assert denied(doc, "s3:GetObject", obj, {"aws:SecureTransport": "false"}), name
        assert denied(doc, "s3:ListBucket", arn, {"aws:SecureTransport": "false"}), name
        assert denied(doc, "s3:GetObject", obj, {"aws:SecureTransport": "true", "s3:TlsVersion": "1.1"}), name
        assert not denied(doc, "s3:GetObject", obj, TLS12), name
        assert not denied(doc, "s3:GetObject", obj, {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}), name

        sse = "s3:x-amz-server-side-encryption"
        key_id = "s3:x-amz-server-side-encryption-aws-kms-key-id"
        assert denied(doc, "s3:PutObject", obj, {**TLS12, sse: "AES256"}), name
        assert denied(doc, "s3:PutObject", obj, {**TLS12, sse: "aws:kms", key_id: foreign}), name
        assert not denied(doc, "s3:PutObject", obj, {**TLS12, sse: "aws:kms", key_id: own}), name
        # no encryption header: the bucket's default encryption (this key) applies, so it is let through
        assert not denied(doc, "s3:PutObject", obj, TLS12), name


def test_kms_upload_without_a_key_id_is_denied(reference_inventory: Inventory) -> None:
    """A PutObject asking for SSE-KMS without naming a key would be encrypted by S3 with the AWS managed key
    (aws/s3) instead of the bucket's CMK; the key-id deny (...IfExists is true when the header is absent) must
    refuse it."""
    inv = reference_inventory
    for name in ALL_BUCKETS:
        b = bucket(inv, name)
        doc = policy(one(inv, b, POLICY))
        request = {**TLS12, "s3:x-amz-server-side-encryption": "aws:kms"}
        assert "DenyUploadsWithAnotherKey" in denied(doc, "s3:PutObject", f"{b.outputs['arn']}/x", request), name


def test_endpoint_log_bucket_takes_only_sse_s3_uploads_over_tls(reference_inventory: Inventory) -> None:
    """The load balancers' access log bucket, SSE-S3 by design, refuses plain HTTP, TLS 1.1 and uploads asking for
    any encryption but SSE-S3 (a KMS key ELB could not use, or none it was told of); it lets through TLS 1.2+
    reads, SSE-S3 uploads and uploads without an encryption header (the default, AES256, applies)."""
    inv = reference_inventory
    b = bucket(inv, ENDPOINT_LOGS)
    doc = policy(one(inv, b, POLICY))
    obj = f"{b.outputs['arn']}/elb/AWSLogs/{ACCOUNT_ID}/x.log.gz"
    sse = "s3:x-amz-server-side-encryption"
    assert denied(doc, "s3:GetObject", obj, {"aws:SecureTransport": "false"})
    assert denied(doc, "s3:GetObject", obj, {"aws:SecureTransport": "true", "s3:TlsVersion": "1.1"})
    assert denied(doc, "s3:PutObject", obj, {**TLS12, sse: "aws:kms"}) == ["DenyUploadsWithOtherEncryption"]
    assert denied(doc, "s3:PutObject", obj, {**TLS12, sse: "aws:kms:dsse"}) == ["DenyUploadsWithOtherEncryption"]
    assert not denied(doc, "s3:GetObject", obj, TLS12)
    assert not denied(doc, "s3:PutObject", obj, {**TLS12, sse: "AES256"})
    assert not denied(doc, "s3:PutObject", obj, TLS12)
    all_keys = {k.urn for k in inv.of_type("aws:kms/key:Key")}
    assert not {urn for urn, _ in policy_refs(one(inv, b, POLICY)) if urn in all_keys}


# --- server access logs -----------------------------------------------------------------------------------


def test_every_data_bucket_logs_to_the_access_log_bucket(reference_inventory: Inventory) -> None:
    """Each data bucket (and the load balancers' access log bucket) has one BucketLogging whose target is computed
    from the access-logs bucket, under its own prefix; the access-logs bucket does not log to itself."""
    inv = reference_inventory
    logs_bucket = bucket(inv, ACCESS_LOGS)
    logged = [*DATA_BUCKETS, ENDPOINT_LOGS, TRAIL_LOGS]
    for name in logged:
        logging = one(inv, bucket(inv, name), LOGGING)
        urn, attribute = ref_attr(logging, "targetBucket")
        assert urn == logs_bucket.urn and attribute in ("bucket", "id"), f"{name} logs elsewhere"
        assert logging.get("targetBucket") == logs_bucket.outputs["bucket"]
        assert logging.get("targetPrefix") == f"{name}/"
    assert attached(inv, logs_bucket, LOGGING) == [], "the access log bucket logs to itself"
    assert len(inv.of_type(LOGGING)) == len(logged)


def test_access_log_bucket_admits_only_s3_log_delivery_of_this_account(reference_inventory: Inventory) -> None:
    """The access-logs policy's only Allow is s3:PutObject for logging.s3.amazonaws.com on its objects, for
    this account (aws:SourceAccount); data bucket policies allow nothing at all. The bucket is under logs-key."""
    inv = reference_inventory
    logs_bucket = bucket(inv, ACCESS_LOGS)
    doc = policy(one(inv, logs_bucket, POLICY))
    allows = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    (delivery,) = allows
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert as_list(delivery["Action"]) == ["s3:PutObject"]
    assert as_list(delivery["Resource"]) == [f"{logs_bucket.outputs['arn']}/*"]
    assert delivery["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}

    sse = one(inv, logs_bucket, SSE)
    path = ("rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
    assert ref_attr(sse, *path) == (key(inv, "logs").urn, "arn")

    for name in DATA_BUCKETS:
        doc = policy(one(inv, bucket(inv, name), POLICY))
        assert [s for s in doc["Statement"] if s["Effect"] != "Deny"] == [], f"{name} policy allows something"


def test_s3_log_delivery_is_not_denied_by_the_access_log_bucket_policy(reference_inventory: Inventory) -> None:
    """The access-logs bucket must accept what S3 server access log delivery actually sends: a PutObject from
    logging.s3.amazonaws.com for this account, without x-amz-server-side-encryption headers (the bucket's
    default encryption applies). No Deny statement may match it, or the logging of every bucket is void."""
    inv = reference_inventory
    logs_bucket = bucket(inv, ACCESS_LOGS)
    doc = policy(one(inv, logs_bucket, POLICY))
    delivery = {"aws:SourceAccount": ACCOUNT_ID}
    assert denied(doc, "s3:PutObject", f"{logs_bucket.outputs['arn']}/training-data/2024/x.log", delivery) == []


# --- object lock ------------------------------------------------------------------------------------------


def test_object_lock_where_the_data_requires_it(reference_inventory: Inventory) -> None:
    """audit-logs, regulated training-data and access-logs are created with object lock and a COMPLIANCE
    365-day default retention wired to them; confidential non-audit buckets have no lock."""
    inv = reference_inventory
    for name in ALL_BUCKETS:
        b = bucket(inv, name)
        locks = attached(inv, b, LOCK)
        if name in LOCKED:
            assert b.get("objectLockEnabled") is True, name
            assert len(locks) == 1, name
            assert locks[0].get("objectLockEnabled") == "Enabled"
            assert locks[0].get("rule", "defaultRetention") == {"mode": "COMPLIANCE", "days": 365}, name
        else:
            assert b.get("objectLockEnabled") is False, name
            assert locks == [], name
    assert bucket(inv, "model-artifacts").get("objectLockEnabled") is False
    elb_logs = bucket(inv, ENDPOINT_LOGS)
    assert not elb_logs.get("objectLockEnabled") and attached(inv, elb_logs, LOCK) == []
    assert one(inv, bucket(inv, TRAIL_LOGS), LOCK).get("rule", "defaultRetention") == {"mode": "COMPLIANCE",
                                                                                     "days": 365}
    assert len(inv.of_type(LOCK)) == len(LOCKED) + 1


def _lock_blueprint(name: str, bucket_spec: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "region": REGION, "classification": "regulated", "data": {"buckets": [bucket_spec]}}


def test_declared_object_lock_mode_and_days_are_applied(synth_blueprint: Callable[[dict], Inventory]) -> None:
    """A bucket's declared `object_lock` (GOVERNANCE, 30 days) is the retention it gets."""
    inv = synth_blueprint(
        _lock_blueprint(
            "govlock",
            {"name": "scratch", "purpose": "general", "object_lock": {"mode": "GOVERNANCE", "days": 30}},
        )
    )
    b = bucket(inv, "scratch")
    assert b.get("objectLockEnabled") is True
    lock = one(inv, b, LOCK)
    assert lock.get("rule", "defaultRetention") == {"mode": "GOVERNANCE", "days": 30}


def test_disabled_object_lock_on_regulated_data_is_honoured(synth_blueprint: Callable[[dict], Inventory]) -> None:
    """`object_lock: {enabled: false}` on a regulated bucket turns the default lock off: no lock configuration,
    objectLockEnabled false (only the access log bucket and the audit trail's stay locked)."""
    inv = synth_blueprint(
        _lock_blueprint("nolock", {"name": "scratch", "purpose": "training-data", "object_lock": {"enabled": False}})
    )
    b = bucket(inv, "scratch")
    assert b.get("tags", "hardstack:classification") == "regulated"
    assert b.get("objectLockEnabled") is False
    assert attached(inv, b, LOCK) == []
    assert sorted(lock.name for lock in inv.of_type(LOCK)) == [f"{ACCESS_LOGS}-object-lock",
                                                               f"{TRAIL_LOGS}-object-lock"]


# --- lifecycle --------------------------------------------------------------------------------------------


def test_lifecycle_rules(reference_inventory: Inventory) -> None:
    """Every bucket aborts incomplete multipart uploads after 7 days and expires noncurrent versions after
    noncurrent_version_days (90 by default, the 365-day log retention for access-logs and the trail); only a bucket with
    expiration_days (inference-logs: 400) expires current objects, and the load balancers' access logs expire
    after a year."""
    inv = reference_inventory
    for name in EVERY_BUCKET:
        rules = one(inv, bucket(inv, name), LIFECYCLE).get("rules")
        for rule in rules:
            assert rule["status"] == "Enabled" and rule["filter"] == {}, (name, rule)
        aborts = [r["abortIncompleteMultipartUpload"] for r in rules if "abortIncompleteMultipartUpload" in r]
        assert aborts == [{"daysAfterInitiation": 7}], name
        noncurrent = [r["noncurrentVersionExpiration"] for r in rules if "noncurrentVersionExpiration" in r]
        assert noncurrent == [{"noncurrentDays": 365 if name in (ACCESS_LOGS, TRAIL_LOGS) else 90}], name
        expiration = [r["expiration"] for r in rules if "expiration" in r]
        assert expiration == {"inference-logs": [{"days": 400}], ENDPOINT_LOGS: [{"days": 365}]}.get(name, []), name


def test_noncurrent_version_days_come_from_the_bucket_spec(synth_blueprint: Callable[[dict], Inventory]) -> None:
    """A declared noncurrent_version_days is the noncurrent expiration the bucket gets."""
    inv = synth_blueprint(
        {
            "name": "versions",
            "region": REGION,
            "classification": "confidential",
            "data": {"buckets": [{"name": "scratch", "purpose": "general", "noncurrent_version_days": 45}]},
        }
    )
    rules = one(inv, bucket(inv, "scratch"), LIFECYCLE).get("rules")
    assert [r["noncurrentVersionExpiration"] for r in rules if "noncurrentVersionExpiration" in r] == [
        {"noncurrentDays": 45}
    ]
    assert not [r for r in rules if "expiration" in r]


# --- tags -------------------------------------------------------------------------------------------------


def test_every_bucket_is_tagged(reference_inventory: Inventory) -> None:
    """Every bucket carries the stack, its component, its effective classification and purpose, and the
    blueprint's own tags."""
    buckets = reference_inventory.of_type(BUCKET)
    assert len(buckets) == len(EVERY_BUCKET)
    for b in buckets:
        name = b.name.removesuffix("-bucket")
        expected = {**ALL_BUCKETS, ENDPOINT_LOGS: ("confidential", "load-balancer-access-logs", None),
                    TRAIL_LOGS: ("confidential", "audit-logs", None)}
        classification, purpose, _ = expected[name]
        tags = b.get("tags")
        assert tags["hardstack:stack"] == STACK, name
        assert tags["hardstack:component"] == name, name
        assert tags["hardstack:classification"] == classification, name
        assert tags["hardstack:purpose"] == purpose, name
        assert tags["cost-center"] == "ml-platform", name


# --- grants -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grants_inventory() -> Inventory:
    """A key, a confidential training-data bucket and two roles: one granted read, one granted write."""
    import pulumi_aws as aws

    from hardstack.blueprints.base import Classification
    from hardstack.blueprints.data import BucketSpec
    from hardstack.blueprints.kms import KmsSpec
    from hardstack.modules.kms import CustomerManagedKey
    from hardstack.modules.storage import EncryptedBucket
    from hardstack.stacks.synth import run_program

    assume = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'

    def program() -> None:
        k = CustomerManagedKey("k", KmsSpec(), description="grants", via_services=("s3",))
        b = EncryptedBucket(
            "data",  # a Name needs at least 2 characters
            BucketSpec(name="data", purpose="training-data"),
            k,
            classification=Classification.confidential,
            access_logs=None,
        )
        b.grant_read(aws.iam.Role("reader", assume_role_policy=assume))
        b.grant_write(aws.iam.Role("writer", assume_role_policy=assume))

    return run_program(program, project="p", stack="s", region=REGION)


def _grant(inv: Inventory, role_name: str) -> tuple[list[dict[str, Any]], str, str]:
    """The statements of the RolePolicy attached to role `role_name`, the bucket ARN and the key ARN."""
    role = inv.named(role_name, "aws:iam/role:Role")
    (rp,) = [r for r in inv.of_type(ROLE_POLICY) if ref_attr(r, "role")[0] == role.urn]
    b, k = inv.named("data-bucket", BUCKET), inv.named("k-key", "aws:kms/key:Key")
    assert {(b.urn, "arn"), (k.urn, "arn")} <= policy_refs(rp), "the grant is not computed from bucket and key"
    return policy(rp)["Statement"], b.outputs["arn"], k.outputs["arn"]


def _check_least_privilege(sts: list[dict[str, Any]], bucket_arn: str, key_arn: str) -> None:
    for st in sts:
        assert st["Effect"] == "Allow"
        assert "NotAction" not in st and "NotResource" not in st
        for action in as_list(st["Action"]):
            assert "*" not in action, f"wildcard action {action}"
        for resource in as_list(st["Resource"]):
            assert resource in (bucket_arn, f"{bucket_arn}/*", key_arn), f"grant reaches {resource}"
        if any(a.startswith("kms:") for a in as_list(st["Action"])):
            assert as_list(st["Resource"]) == [key_arn], "key use on something other than THE key"
            assert all(a.startswith("kms:") for a in as_list(st["Action"]))
            assert st["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}


def _allowed(sts: list[dict[str, Any]], action: str, resource: str) -> bool:
    return any(
        action in as_list(st["Action"]) and resource in as_list(st["Resource"])
        for st in sts
        if st["Effect"] == "Allow"
    )


def _all_actions(sts: list[dict[str, Any]]) -> set[str]:
    return {a for st in sts for a in as_list(st["Action"])}


def test_grant_read_is_least_privilege(grants_inventory: Inventory) -> None:
    """grant_read: ListBucket on the bucket, GetObject/GetObjectVersion on its objects, kms:Decrypt on THE
    bucket's key only through S3 in the region; no wildcard, no write, no encrypt."""
    sts, bucket_arn, key_arn = _grant(grants_inventory, "reader")
    _check_least_privilege(sts, bucket_arn, key_arn)
    assert _allowed(sts, "s3:ListBucket", bucket_arn)
    assert _allowed(sts, "s3:GetObject", f"{bucket_arn}/*")
    assert _allowed(sts, "s3:GetObjectVersion", f"{bucket_arn}/*")
    assert _allowed(sts, "kms:Decrypt", key_arn)
    granted = _all_actions(sts)
    assert not granted & {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutBucketPolicy"}
    assert not granted & {"kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"}


def test_grant_write_is_least_privilege(grants_inventory: Inventory) -> None:
    """grant_write: PutObject on the bucket's objects and kms:GenerateDataKey on THE key through S3; no reads
    (GetObject) and no deletes."""
    sts, bucket_arn, key_arn = _grant(grants_inventory, "writer")
    _check_least_privilege(sts, bucket_arn, key_arn)
    assert _allowed(sts, "s3:PutObject", f"{bucket_arn}/*")
    assert _allowed(sts, "kms:GenerateDataKey", key_arn)
    granted = _all_actions(sts)
    assert not granted & {"s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion"}
    assert "kms:CreateGrant" not in granted
    assert "s3:ListBucket" not in granted  # a writer does not see the bucket's keys


def test_each_grant_goes_to_its_own_role_only(grants_inventory: Inventory) -> None:
    """grant_read and grant_write each attach exactly one RolePolicy, to the role they were given."""
    policies = grants_inventory.of_type(ROLE_POLICY)
    roles = {grants_inventory[ref_attr(rp, "role")[0]].name for rp in policies}
    assert len(policies) == 2 and roles == {"reader", "writer"}
