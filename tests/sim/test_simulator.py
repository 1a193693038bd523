"""The simulator's ECS fidelity (docs/design.md §6): what the rest of the suite relies on."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions
import moto.backends
import pytest
from botocore.config import Config
from freezegun import freeze_time

from tdgc.local.simulator import Behaviour, Finish, Refusal, Simulator, Tokens, _shape_errors
from tests.helpers import NOW, days


def register(ecs: Any, family: str) -> dict[str, Any]:
    td: dict[str, Any] = ecs.register_task_definition(
        family=family, containerDefinitions=[{"name": "app", "image": "busybox", "memory": 128}]
    )["taskDefinition"]
    return td


def test_list_task_definitions_pages_sorts_and_filters(sim: Simulator, ecs: Any) -> None:
    for n in range(250):
        sim.seed(
            "big",
            registered_at=NOW - days(300 - n),
            status="INACTIVE" if n % 2 else "ACTIVE",
            deregistered_at=NOW - days(10),
        )
    sim.seed("other", registered_at=NOW)
    first = ecs.list_task_definitions(familyPrefix="big", status="INACTIVE", sort="DESC", maxResults=100)
    assert len(first["taskDefinitionArns"]) == 100 and "nextToken" in first
    assert first["taskDefinitionArns"][0].endswith("big:250")
    pages = list(
        ecs.get_paginator("list_task_definitions").paginate(familyPrefix="big", status="INACTIVE", sort="DESC")
    )
    arns = [a for p in pages for a in p["taskDefinitionArns"]]
    assert len(pages) == 2 and len(arns) == 125
    assert [int(a.rsplit(":", 1)[1]) for a in arns] == list(range(250, 0, -2))
    asc = [
        a for p in ecs.get_paginator("list_task_definitions").paginate(status="ACTIVE") for a in p["taskDefinitionArns"]
    ]
    assert asc[0].endswith("big:1") and asc[-1].endswith("other:1") and len(asc) == 126


@pytest.mark.parametrize("sort", ["ASC", "DESC"])
@pytest.mark.parametrize("size", [1, 3, 7, 100])
def test_account_wide_pages_list_every_family_in_order(sim: Simulator, ecs: Any, sort: str, size: int) -> None:
    shape = {"a": 5, "b-1": 0, "b": 12, "c": 7, "d": 1}  # family -> revisions; every third one INACTIVE
    for family, count in shape.items():
        for n in range(count):
            sim.seed(
                family,
                registered_at=NOW - days(50 - n),
                status="INACTIVE" if n % 3 == 2 else "ACTIVE",
                deregistered_at=NOW - days(5),
            )
    for status in ("ACTIVE", "INACTIVE"):
        inactive = status == "INACTIVE"
        expected = [(f, n) for f in sorted(shape) for n in range(1, shape[f] + 1) if (n % 3 == 0) == inactive]
        if sort == "DESC":
            expected.reverse()
        pages = list(
            ecs.get_paginator("list_task_definitions").paginate(
                status=status, sort=sort, PaginationConfig={"PageSize": size}
            )
        )
        listed = [
            (a.rsplit("/", 1)[1].rsplit(":", 1)[0], int(a.rsplit(":", 1)[1]))
            for p in pages
            for a in p["taskDefinitionArns"]
        ]
        assert listed == expected
        assert all(len(p["taskDefinitionArns"]) == size for p in pages[:-1])


def test_default_page_is_100_and_max_results_is_bounded(sim: Simulator, ecs: Any) -> None:
    for n in range(150):
        sim.seed("f", registered_at=NOW - days(200 - n))
    assert len(ecs.list_task_definitions()["taskDefinitionArns"]) == 100
    for bad in (0, 101):
        with pytest.raises(botocore.exceptions.ClientError, match="maxResults"):
            ecs.list_task_definitions(maxResults=bad)
    with pytest.raises(botocore.exceptions.ClientError, match="nextToken"):
        ecs.list_task_definitions(nextToken="not-a-token")


@pytest.mark.parametrize("tokens", list(Tokens))
def test_a_removal_between_pages_skips_one_under_offsets_and_none_under_keys(tokens: Tokens) -> None:
    with Simulator(behaviour=Behaviour(tokens=tokens)) as sim:
        ecs = boto3.client("ecs", region_name=sim.region)
        for n in range(30):
            sim.seed("f", registered_at=NOW - days(60 - n))
        page = ecs.list_task_definitions(familyPrefix="f", maxResults=10)
        ecs.deregister_task_definition(taskDefinition=page["taskDefinitionArns"][0])  # leaves the ACTIVE listing
        rest = ecs.list_task_definitions(familyPrefix="f", maxResults=100, nextToken=page["nextToken"])
        numbers = [int(a.rsplit(":", 1)[1]) for a in rest["taskDefinitionArns"]]
        assert numbers == (list(range(11, 31)) if tokens is Tokens.KEY else list(range(12, 31)))
        # A token of the other kind, or of another query, is refused.
        with pytest.raises(botocore.exceptions.ClientError, match="nextToken"):
            ecs.list_task_definitions(familyPrefix="g", nextToken=page["nextToken"])


@pytest.mark.parametrize("tokens", list(Tokens))
def test_account_wide_offsets_move_with_the_listing(tokens: Tokens) -> None:
    with Simulator(behaviour=Behaviour(tokens=tokens)) as sim:
        ecs = boto3.client("ecs", region_name=sim.region)
        for family in ("a", "b", "c"):
            for n in range(5):
                sim.seed(family, registered_at=NOW - days(10 - n))
        page = ecs.list_task_definitions(maxResults=7)  # a:1-5, b:1-2
        sim.seed("a", registered_at=NOW)  # someone registers a:6, before the token's place
        rest = ecs.list_task_definitions(maxResults=100, nextToken=page["nextToken"])["taskDefinitionArns"]
        first = rest[0].rsplit("/", 1)[1]
        assert first == ("b:3" if tokens is Tokens.KEY else "b:2"), "an offset gives b:2 a second time"


@pytest.mark.parametrize("included", [True, False])
def test_the_inactive_listing_with_or_without_deletes_in_progress(included: bool) -> None:
    with Simulator(behaviour=Behaviour(inactive_lists_deleting=included)) as sim:
        ecs = boto3.client("ecs", region_name=sim.region)
        a, b = (sim.seed("f", registered_at=NOW - days(9), status="INACTIVE", deregistered_at=NOW) for _ in range(2))
        ecs.delete_task_definitions(taskDefinitions=[a])
        assert ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"] == ([a, b] if included else [b])
        assert ecs.list_task_definitions(status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == [a]


@pytest.mark.parametrize("answer", list(Refusal))
@pytest.mark.parametrize("finish", list(Finish))
def test_a_repeated_delete(answer: Refusal, finish: Finish) -> None:
    with Simulator(behaviour=Behaviour(repeat_delete=answer, deletes_finish=finish)) as sim:
        ecs = boto3.client("ecs", region_name=sim.region)
        first, other = (
            sim.seed("f", registered_at=NOW - days(9), status="INACTIVE", deregistered_at=NOW) for _ in range(2)
        )
        accepted = ecs.delete_task_definitions(taskDefinitions=[first])["taskDefinitions"]
        assert [(t["taskDefinitionArn"], t["status"]) for t in accepted] == [(first, "DELETE_IN_PROGRESS")]
        assert sim.statuses()[first] == ("GONE" if finish is Finish.AT_ONCE else "DELETE_IN_PROGRESS")
        if answer is Refusal.ERROR:
            with pytest.raises(botocore.exceptions.ClientError, match="ClientException"):
                ecs.delete_task_definitions(taskDefinitions=[first, other])
            assert sim.statuses()[other] == "INACTIVE", "a call refused whole does nothing"
            return
        again = ecs.delete_task_definitions(taskDefinitions=[first, other])
        done = [t["taskDefinitionArn"] for t in again["taskDefinitions"]]
        assert [f["arn"] for f in again["failures"]] == ([first] if answer is Refusal.FAILURE else [])
        assert done == ([other] if answer is Refusal.FAILURE else [first, other])
        if finish is Finish.AT_ONCE:
            with pytest.raises(botocore.exceptions.ClientError, match="Unable to describe"):
                ecs.describe_task_definition(taskDefinition=first)


@pytest.mark.parametrize("answer", [Refusal.ACCEPTED, Refusal.ERROR])
def test_deregistering_an_inactive_or_deleting_revision(answer: Refusal) -> None:
    with Simulator(behaviour=Behaviour(deregister_inactive=answer)) as sim:
        ecs = boto3.client("ecs", region_name=sim.region)
        inactive = sim.seed("f", registered_at=NOW - days(9), status="INACTIVE", deregistered_at=NOW - days(1))
        deleting = sim.seed("f", registered_at=NOW - days(8), status="DELETE_IN_PROGRESS", deregistered_at=NOW)
        if answer is Refusal.ERROR:
            with pytest.raises(botocore.exceptions.ClientError, match="ClientException"):
                ecs.deregister_task_definition(taskDefinition=inactive)
        else:
            ecs.deregister_task_definition(taskDefinition=inactive)
        td = ecs.describe_task_definition(taskDefinition=inactive)["taskDefinition"]
        assert (td["status"], td["deregisteredAt"]) == ("INACTIVE", NOW - days(1)), "unchanged either way"
        with pytest.raises(botocore.exceptions.ClientError, match="in the process of being deleted"):
            ecs.deregister_task_definition(taskDefinition=deleting)  # documented


@pytest.mark.parametrize("stamped", [True, False])
def test_the_deregister_answer_with_or_without_its_time(stamped: bool) -> None:
    with Simulator(behaviour=Behaviour(deregistered_at_in_response=stamped)) as sim:
        ecs = boto3.client("ecs", region_name=sim.region)
        arn = sim.seed("f", registered_at=NOW - days(9))
        answer = ecs.deregister_task_definition(taskDefinition=arn)["taskDefinition"]
        assert answer["status"] == "INACTIVE" and ("deregisteredAt" in answer) == stamped
        assert "deregisteredAt" in ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]


@pytest.mark.parametrize("listed", [True, False])
def test_a_family_whose_revisions_are_all_being_deleted(listed: bool) -> None:
    with Simulator(behaviour=Behaviour(deleting_families_listed=listed)) as sim:
        ecs = boto3.client("ecs", region_name=sim.region)
        arn = sim.seed("gone", registered_at=NOW - days(9), status="INACTIVE", deregistered_at=NOW)
        sim.seed("kept", registered_at=NOW)
        ecs.delete_task_definitions(taskDefinitions=[arn])
        families = ecs.list_task_definition_families()["families"]
        assert families == (["gone", "kept"] if listed else ["kept"])
        inactive = ecs.list_task_definition_families(status="INACTIVE")["families"]
        assert inactive == (["gone"] if listed else [])


def test_pairwise_behaviours_give_every_pair_of_answers() -> None:
    choices = Behaviour.choices()
    rows = Behaviour.pairwise()
    assert rows[0] == Behaviour(), "the hardest first"
    for a, b in itertools.combinations(choices, 2):
        seen = {(getattr(r, a), getattr(r, b)) for r in rows}
        assert seen == set(itertools.product(choices[a], choices[b])), (a, b)
    assert len({r.label() for r in rows}) == len(rows)


def test_answers_that_do_not_fit_botocore_s_model_are_caught() -> None:
    good = '{"taskDefinitionArns": ["arn:aws:ecs:us-east-1:1:task-definition/f:1"], "nextToken": null}'
    assert _shape_errors("ecs", "ListTaskDefinitions", (200, {}, good)) == []
    unknown = _shape_errors("ecs", "ListTaskDefinitions", (200, {}, '{"taskDefinitionArns": [], "more": 1}'))
    wrong = _shape_errors("ecs", "DeleteTaskDefinitions", (200, {}, '{"failures": [{"arn": 7}]}'))
    assert "Unknown parameter" in unknown[0] and "Invalid type" in wrong[0]


def test_family_status_filter_and_paging(sim: Simulator, ecs: Any) -> None:
    for n in range(130):
        sim.seed(f"fam-{n:03d}", registered_at=NOW, status="INACTIVE" if n % 3 == 0 else "ACTIVE", deregistered_at=NOW)
    paginator = ecs.get_paginator("list_task_definition_families")
    every = [f for p in paginator.paginate(status="ALL") for f in p["families"]]
    active = [f for p in paginator.paginate(status="ACTIVE") for f in p["families"]]
    inactive = [f for p in paginator.paginate(status="INACTIVE") for f in p["families"]]
    assert len(every) == 130 and every == sorted(every)
    assert len(inactive) == 44 and set(active) | set(inactive) == set(every) and not set(active) & set(inactive)
    assert len(ecs.list_task_definition_families(familyPrefix="fam-01")["families"]) == 10
    assert sim.count("ListTaskDefinitionFamilies") == 2 + 1 + 1 + 1  # ALL: 130 in two pages; 86; 44; 10


def test_timestamps_come_from_the_frozen_clock(sim: Simulator, ecs: Any) -> None:
    with freeze_time("2025-01-02T03:04:05Z"):
        td = register(ecs, "web")
    with freeze_time("2025-03-01T00:00:00Z"):
        ecs.deregister_task_definition(taskDefinition=td["taskDefinitionArn"])
    gone = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    assert td["registeredAt"] == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert "arn:aws:iam::" in td["registeredBy"]
    assert gone["deregisteredAt"] == datetime(2025, 3, 1, tzinfo=UTC)
    assert gone["status"] == "INACTIVE"


def test_old_revisions_have_no_timestamps(sim: Simulator, ecs: Any) -> None:
    arn = sim.seed("legacy", registered_at=None, status="INACTIVE")
    td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert "registeredAt" not in td and "deregisteredAt" not in td and td["status"] == "INACTIVE"


def test_seeding_keeps_registered_at_monotonic(sim: Simulator) -> None:
    sim.seed("f", registered_at=NOW)
    with pytest.raises(ValueError, match="must not decrease"):
        sim.seed("f", registered_at=NOW - days(1))


def test_deleted_revisions_stay_listable_until_finished(sim: Simulator, ecs: Any) -> None:
    a = sim.seed("f", registered_at=NOW - days(9), status="INACTIVE", deregistered_at=NOW - days(8))
    b = sim.seed("f", registered_at=NOW - days(1))
    answer = ecs.delete_task_definitions(taskDefinitions=[a, b])
    assert [t["status"] for t in answer["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    assert answer["failures"][0]["arn"] == b and "ACTIVE" in answer["failures"][0]["reason"]
    assert ecs.list_task_definitions(status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == [a]
    assert ecs.describe_task_definition(taskDefinition=a)["taskDefinition"]["status"] == "DELETE_IN_PROGRESS"
    assert sim.finish_deletes() == 1
    assert ecs.list_task_definitions(status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == []
    with pytest.raises(botocore.exceptions.ClientError):
        ecs.delete_task_definitions(taskDefinitions=[a] * 11)


def test_revision_numbers_are_never_reused(sim: Simulator, ecs: Any) -> None:
    first = register(ecs, "f")
    ecs.deregister_task_definition(taskDefinition=first["taskDefinitionArn"])
    ecs.delete_task_definitions(taskDefinitions=[first["taskDefinitionArn"]])
    sim.finish_deletes()
    assert register(ecs, "f")["revision"] == 2


def test_family_name_resolves_to_newest_active(sim: Simulator, ecs: Any) -> None:
    sim.seed("f", registered_at=NOW - days(3))
    sim.seed("f", registered_at=NOW - days(2))
    sim.seed("f", registered_at=NOW - days(1), status="INACTIVE", deregistered_at=NOW)
    assert ecs.describe_task_definition(taskDefinition="f")["taskDefinition"]["revision"] == 2


def test_faults_and_call_counts(sim: Simulator, ecs: Any) -> None:
    arn = sim.seed("f", registered_at=NOW - days(2))
    sim.inject("DescribeTaskDefinition", "ServerException", status=500, times=-1, message="boom")
    with pytest.raises(botocore.exceptions.ClientError, match="ServerException"):
        ecs.describe_task_definition(taskDefinition=arn)
    sim.clear_faults()
    sim.inject("DeregisterTaskDefinition", times=1)
    ecs.deregister_task_definition(taskDefinition=arn)  # botocore retries the throttle
    assert sim.count("DeregisterTaskDefinition") == 2
    assert sim.mutating_calls() == 2
    assert sim.count("DescribeTaskDefinition") >= 2


@pytest.mark.parametrize("operation", ["PutObject", "GetObject", "HeadObject", "DeleteObject"])
def test_s3_object_calls_are_counted_and_take_faults_but_are_not_mutations(operation: str, sim: Simulator) -> None:
    s3 = boto3.client("s3", region_name=sim.region, config=Config(retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="bucket")
    s3.put_object(Bucket="bucket", Key="k", Body=b"x")
    call = {
        "PutObject": lambda: s3.put_object(Bucket="bucket", Key="k", Body=b"y"),
        "GetObject": lambda: s3.get_object(Bucket="bucket", Key="k"),
        "HeadObject": lambda: s3.head_object(Bucket="bucket", Key="k"),
        "DeleteObject": lambda: s3.delete_object(Bucket="bucket", Key="k"),
    }[operation]
    sim.inject(operation, "AccessDenied", message="Access Denied", times=1)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        call()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    call()  # the fault was for one call only
    assert sim.count(operation) == 2 + (operation == "PutObject")  # the seeding put counts too
    assert sim.mutating_calls() == 0, "tdgc's own objects, not the account it manages"


OTHER_ACCOUNT = "111111111111"


@pytest.mark.parametrize(
    "operation", ["HeadBucket", "PutObject", "GetObject", "HeadObject", "ListObjectsV2", "CreateMultipartUpload"]
)
def test_s3_refuses_a_caller_expecting_another_owner_as_aws_does(operation: str, sim: Simulator) -> None:
    """moto ignores ExpectedBucketOwner: the simulator answers 403 when the bucket's account is not the one
    expected (a HEAD's 403 has no body, so no code but the status), and goes on as before otherwise."""
    sim.create_bucket("theirs", account=OTHER_ACCOUNT)
    s3 = boto3.client("s3", region_name=sim.region, config=Config(retries={"max_attempts": 1}))
    s3.put_object(Bucket="theirs", Key="k", Body=b"x")  # S3 names are global: moto lets any account in
    call = {
        "HeadBucket": lambda owner: s3.head_bucket(Bucket="theirs", ExpectedBucketOwner=owner),
        "PutObject": lambda owner: s3.put_object(Bucket="theirs", Key="k", Body=b"y", ExpectedBucketOwner=owner),
        "GetObject": lambda owner: s3.get_object(Bucket="theirs", Key="k", ExpectedBucketOwner=owner),
        "HeadObject": lambda owner: s3.head_object(Bucket="theirs", Key="k", ExpectedBucketOwner=owner),
        "ListObjectsV2": lambda owner: s3.list_objects_v2(Bucket="theirs", ExpectedBucketOwner=owner),
        "CreateMultipartUpload": lambda owner: s3.create_multipart_upload(
            Bucket="theirs", Key="m", ExpectedBucketOwner=owner
        ),
    }[operation]
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        call(sim.account_id)
    error = refused.value.response["Error"]
    said = ("403", "Forbidden") if operation.startswith("Head") else ("AccessDenied", "Access Denied")
    assert (error["Code"], error.get("Message")) == said
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    call(OTHER_ACCOUNT)  # the owner it has
    assert sim.s3_requests[-1].expected_owner == OTHER_ACCOUNT
    assert [r.expected_owner for r in sim.s3_requests] == [None, sim.account_id, OTHER_ACCOUNT]


def test_s3_resolves_an_sse_kms_key_as_aws_does(sim: Simulator) -> None:
    """A key id or alias is looked up in the requester's account; S3 keeps (and HeadObject gives) the key's ARN;
    a key that does not exist refuses the write; SSE-KMS without a key is the AWS managed key for S3."""
    sim.create_bucket("bucket")
    key = sim.create_kms_key("alias/archives")
    theirs = sim.create_kms_key("alias/archives", account=OTHER_ACCOUNT)
    s3 = boto3.client("s3", region_name=sim.region, config=Config(retries={"max_attempts": 1}))

    def stored(given: str | None) -> str:
        extra = {"SSEKMSKeyId": given} if given else {}
        s3.put_object(Bucket="bucket", Key="k", Body=b"x", ServerSideEncryption="aws:kms", **extra)
        head = s3.head_object(Bucket="bucket", Key="k")
        assert head["ServerSideEncryption"] == "aws:kms"
        return str(head["SSEKMSKeyId"])

    assert stored("alias/archives") == stored(key.rsplit("/", 1)[1]) == stored(key) == key
    assert stored(theirs) == theirs, "another account's key by its ARN"
    assert stored(None).startswith(f"arn:aws:kms:us-east-1:{sim.account_id}:key/")
    for missing in ("alias/nope", "1234abcd-12ab-34cd-56ef-1234567890ab", key.replace(sim.account_id, "222222222222")):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            s3.put_object(Bucket="bucket", Key="k2", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=missing)
        error = refused.value.response["Error"]
        assert (error["Code"], error["Message"]) == ("KMS.NotFoundException", f"Invalid keyId '{missing}'")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Contents" not in s3.list_objects_v2(Bucket="bucket", Prefix="k2")


def test_throttling_when_asked(sim: Simulator) -> None:
    clock = [0.0]
    ecs = boto3.client("ecs", region_name=sim.region, config=Config(retries={"total_max_attempts": 1}))
    arns = [sim.seed("f", registered_at=None) for _ in range(30)]
    sim.throttle(clock=lambda: clock[0])
    for arn in arns[:20]:  # the modify bucket's burst
        ecs.deregister_task_definition(taskDefinition=arn)
    with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
        ecs.deregister_task_definition(taskDefinition=arns[20])
    assert sim.throttled == {"DeregisterTaskDefinition": 1}
    for _ in range(40):  # reads have their own bucket
        ecs.list_task_definitions(maxResults=1)
    clock[0] += 1.0  # the modify bucket refills at 1 call per second
    ecs.deregister_task_definition(taskDefinition=arns[20])
    with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
        ecs.register_task_definition(family="f", containerDefinitions=[{"name": "a", "image": "b", "memory": 8}])


def test_throttling_is_per_account_and_region(sim: Simulator) -> None:
    """Each account and Region has its own buckets, as in ECS: one target's mutations never drain another's."""
    clock = [0.0]
    other = "333344445555"
    creds = boto3.client("sts", region_name=sim.region).assume_role(
        RoleArn=f"arn:aws:iam::{other}:role/tdgc", RoleSessionName="test"
    )["Credentials"]
    keys = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    no_retries = Config(retries={"total_max_attempts": 1})
    targets = {
        (sim.account_id, "us-east-1"): boto3.client("ecs", region_name="us-east-1", config=no_retries),
        (sim.account_id, "eu-west-1"): boto3.client("ecs", region_name="eu-west-1", config=no_retries),
        (other, "us-east-1"): boto3.client("ecs", region_name="us-east-1", config=no_retries, **keys),
    }
    arns = {
        (account, region): [sim.seed("f", registered_at=None, account=account, region=region) for _ in range(21)]
        for account, region in targets
    }
    sim.throttle(clock=lambda: clock[0])
    for target, ecs in targets.items():
        for arn in arns[target][:20]:  # each bucket's burst, full
            ecs.deregister_task_definition(taskDefinition=arn)
    for target, ecs in targets.items():
        with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
            ecs.deregister_task_definition(taskDefinition=arns[target][20])
    assert sim.throttled == {"DeregisterTaskDefinition": 3}
    for account, region in targets:
        statuses = list(sim.statuses(region, account).values())
        assert statuses.count("INACTIVE") == 20, f"{account} {region}: its own burst went through"


def test_throttling_refill_is_time_scaled(sim: Simulator) -> None:
    clock = [0.0]
    ecs = boto3.client("ecs", region_name=sim.region, config=Config(retries={"total_max_attempts": 1}))
    arns = [sim.seed("f", registered_at=None, status="INACTIVE") for _ in range(60)]
    sim.throttle(time_scale=100.0, clock=lambda: clock[0])
    for n in range(5):  # the delete bucket's burst: 5 calls
        ecs.delete_task_definitions(taskDefinitions=arns[n * 10 : n * 10 + 10])
    with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
        ecs.delete_task_definitions(taskDefinitions=arns[50:])
    clock[0] += 0.01  # 1/s scaled by 100: a token every 10 ms
    ecs.delete_task_definitions(taskDefinitions=arns[50:])


@pytest.mark.parametrize("tokens", list(Tokens))
def test_services_keep_their_revisions_and_deployments(tokens: Tokens) -> None:
    with Simulator(behaviour=Behaviour(tokens=tokens)) as sim:
        ecs = boto3.client("ecs", region_name=sim.region)
        for _ in range(3):
            register(ecs, "web")
        ecs.create_cluster(clusterName="prod")
        ecs.create_service(cluster="prod", serviceName="api", taskDefinition="web:1", desiredCount=1)
        ecs.update_service(cluster="prod", service="api", taskDefinition="web:2")
        service = ecs.describe_services(cluster="prod", services=["api"])["services"][0]
        assert [d["taskDefinition"].rsplit("/", 1)[1] for d in service["deployments"]] == ["web:2"], "web:1 is done"
        sim.deployments_complete = False
        ecs.update_service(cluster="prod", service="api", taskDefinition="web:3")
        service = ecs.describe_services(cluster="prod", services=["api"])["services"][0]
        assert [(d["status"], d["taskDefinition"].rsplit("/", 1)[1]) for d in service["deployments"]] == [
            ("PRIMARY", "web:3"),
            ("ACTIVE", "web:2"),
        ]
        listed, token = [], None
        while True:  # a page of one at a time, newest first
            page = ecs.list_service_deployments(
                cluster="prod", service="api", maxResults=1, **({"nextToken": token} if token else {})
            )
            listed += page["serviceDeployments"]
            token = page.get("nextToken")
            if not token:
                break
        assert [d["status"] for d in listed] == ["IN_PROGRESS", "SUCCESSFUL", "SUCCESSFUL"]
        described = ecs.describe_service_deployments(serviceDeploymentArns=[d["serviceDeploymentArn"] for d in listed])
        sources = [[s["arn"] for s in d["sourceServiceRevisions"]] for d in described["serviceDeployments"]]
        revisions = ecs.describe_service_revisions(serviceRevisionArns=[s[0] for s in sources if s])
        assert [r["taskDefinition"].rsplit("/", 1)[1] for r in revisions["serviceRevisions"]] == ["web:2", "web:1"]
        gone = ecs.describe_service_revisions(serviceRevisionArns=[sources[0][0] + "0"])
        assert gone["serviceRevisions"] == [] and gone["failures"][0]["reason"] == "MISSING"
        assert sim.shape_errors == []


def test_timestamps_are_kept_as_ecs_sends_them_to_the_millisecond(sim: Simulator, ecs: Any) -> None:
    """What the simulator records is what a client reads: a test comparing the two never sees a microsecond
    that did not cross the wire (a revision at the cut-off to the microsecond looked young to one, old to the
    other)."""
    arn = sim.seed("f", registered_at=datetime(2026, 5, 31, 12, 0, 0, 999_999, tzinfo=UTC))
    [recorded] = sim.revisions("ACTIVE")
    sent = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["registeredAt"]
    assert recorded.registered_at == sent == datetime(2026, 5, 31, 12, 0, 0, 999_000, tzinfo=UTC)


def test_a_served_simulator_answers_many_first_requests_at_once(sim: Simulator) -> None:
    """Served, the simulator builds moto's per-service state before the first request (tdgc's parallel targets
    all start at once) and patches moto only while it serves."""
    listing = moto.backends.list_of_moto_modules
    for _ in range(3):
        sim.seed("etl", registered_at=NOW)
    with sim.serve() as url:

        def first(_: int) -> list[str]:
            ecs = boto3.client(
                "ecs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
            )
            arns: list[str] = ecs.list_task_definitions()["taskDefinitionArns"]
            return arns

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(first, range(16)))
    assert answers == [[f"arn:aws:ecs:us-east-1:{sim.account_id}:task-definition/etl:{n}" for n in (1, 2, 3)]] * 16
    assert not sim.shape_errors
    assert moto.backends.list_of_moto_modules is listing
