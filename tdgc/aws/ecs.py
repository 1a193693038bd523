"""ECS's task-definition calls as tdgc makes them: the one adapter the scanner, the tags store, register-or-reuse
and restore share, so that paging, page sizes and what "no longer exists" looks like are decided once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from tdgc.aws.errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

PAGE_SIZE = 100  # the most ECS returns in one page
# What DescribeTaskDefinition answers for a revision that no longer exists (deleted since it was listed, or
# never was): ECS documents neither, and has been seen to answer both.
GONE = frozenset({"ClientException", "InvalidParameterException"})


class TaskDefinitions:
    """One account and Region's task definitions, through a client that paces and retries (tdgc.aws.connection)."""

    def __init__(self, client: ECSClient | Any) -> None:
        self.client = client

    def family_pages(self, status: str = "ALL", prefix: str = "") -> Iterator[list[str]]:
        """Family names with a revision of `status`, a page at a time (botocore's paginator follows the tokens)."""
        kwargs: dict[str, Any] = {"status": status, "PaginationConfig": {"PageSize": PAGE_SIZE}}
        if prefix:
            kwargs["familyPrefix"] = prefix
        for page in self.client.get_paginator("list_task_definition_families").paginate(**kwargs):
            yield list(page.get("families", []))

    def arn_pages(
        self, status: str, *, family: str | None = None, newest_first: bool = False, limit: int | None = None
    ) -> Iterator[list[str]]:
        """Revision ARNs with `status`, of one family or the whole account, a page at a time; at most `limit`."""
        config: dict[str, Any] = {"PageSize": min(PAGE_SIZE, limit) if limit else PAGE_SIZE}
        if limit:
            config["MaxItems"] = limit
        kwargs: dict[str, Any] = {"status": status, "PaginationConfig": config}
        if family is not None:
            kwargs["familyPrefix"] = family
        if newest_first:
            kwargs["sort"] = "DESC"
        for page in self.client.get_paginator("list_task_definitions").paginate(**kwargs):
            yield list(page.get("taskDefinitionArns", []))

    def describe(self, arn: str) -> dict[str, Any] | None:
        """DescribeTaskDefinition's answer with the revision's tags (`taskDefinition`, and `tags` when ECS sends
        them), or None if the revision no longer exists."""
        try:
            answer = self.client.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) in GONE:
                return None
            raise
        return {key: value for key, value in answer.items() if key != "ResponseMetadata"}

    def register(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """RegisterTaskDefinition; the new revision's description (botocore checks the request first)."""
        return dict(self.client.register_task_definition(**request)["taskDefinition"])
