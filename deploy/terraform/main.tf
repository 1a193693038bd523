# tdgc as a Lambda function that EventBridge Scheduler runs: the same deployment as deploy/sam/template.yaml.

locals {
  # The actions tdgc calls, by purpose (tdgc/permissions.py; tests keep the two equal).
  permissions = jsondecode(file("${path.module}/permissions.json"))

  partition = data.aws_arn.dead_letters.partition
  region    = data.aws_arn.dead_letters.region
  account   = data.aws_arn.dead_letters.account

  # The usage store's table, created here or not: the policy names it ([usage] store = "dynamodb://TABLE").
  usage_table_arn = var.usage_table == null ? null : "arn:${local.partition}:dynamodb:${local.region}:${local.account}:table/${var.usage_table}"

  # The account's task definitions, in every region (tdgc.permissions.task_definitions_arn).
  task_definitions = "arn:${local.partition}:ecs:*:${local.account}:task-definition/*"

  # The archive bucket: created here, or an existing one named, or none.
  uses_archive_bucket = var.create_archive_bucket || var.archive_bucket != null
  archive_bucket      = var.create_archive_bucket ? aws_s3_bucket.archive[0].bucket : var.archive_bucket

  # Organisation mode: MemberRoleArns' accounts, or the organisation listed and member_role_name assumed in each
  # (member_role_arns wins when both are set).
  lists_organisation = var.organisation_mode && length(var.member_role_arns) == 0 && var.member_role_name != null
  # The roles the function may assume: those named, or in organisation mode roles of the one name in any account
  # (the accounts come from the organisation's listing; an event only chooses among them).
  assume_resources = length(var.member_role_arns) > 0 ? var.member_role_arns : (
    local.lists_organisation ? ["arn:${local.partition}:iam::*:role/${var.member_role_name}"] : []
  )

  tdgc_statements = concat(
    [for sid, actions in local.permissions.read_only : { Sid = sid, Effect = "Allow", Action = actions, Resource = "*" }],
    # The codedeploy reference source reads AppSpecs kept in S3 (such as CodePipeline artifact buckets) with
    # the target's credentials: this role in its own account (a member role in a member account, deploy/stackset).
    length(var.codedeploy_appspec_buckets) == 0 ? [] : [
      { Sid = "CodeDeployAppSpecs", Effect = "Allow", Action = local.permissions.codedeploy_appspec_objects, Resource = [for name in var.codedeploy_appspec_buckets : "arn:${local.partition}:s3:::${name}/*"] },
    ],
    # The mutations, only when the deployment applies: dry_run = true is enforced by IAM. "*" for the
    # deregistration: the Service Authorization Reference gives DeregisterTaskDefinition no resource type.
    var.dry_run ? [] : [
      { Sid = "ApplyDeregister", Effect = "Allow", Action = local.permissions.apply_deregister, Resource = "*" },
      { Sid = "ApplyDelete", Effect = "Allow", Action = local.permissions.apply_delete, Resource = local.task_definitions },
    ],
    # Defence in depth: a revision carrying the protect tag is never deleted, whatever else the role is granted.
    [{
      Sid       = "KeepProtected", Effect = "Deny", Action = local.permissions.apply_delete, Resource = "*",
      Condition = { StringEquals = { "aws:ResourceTag/${local.permissions.protect_tag.key}" = local.permissions.protect_tag.value } }
    }],
    # The bucket's two prefixes only. s3:ListBucket because tdgc's check of the bucket before the first change
    # is a HeadBucket (it lists nothing), which carries no prefix for an s3:prefix condition to narrow.
    !local.uses_archive_bucket ? [] : [
      { Sid = "ArchiveObjects", Effect = "Allow", Action = local.permissions.archive_objects, Resource = distinct([
        "arn:${local.partition}:s3:::${local.archive_bucket}/${var.archive_prefix}/*",
        "arn:${local.partition}:s3:::${local.archive_bucket}/${var.report_prefix}/*",
      ]) },
      # A list, as the statement above has: a conditional's two tuples must unify.
      { Sid = "ArchiveBucket", Effect = "Allow", Action = local.permissions.archive_bucket, Resource = ["arn:${local.partition}:s3:::${local.archive_bucket}"] },
    ],
    var.archive_kms_key_arn == null ? [] : [
      { Sid = "ArchiveKey", Effect = "Allow", Action = local.permissions.archive_key, Resource = var.archive_kms_key_arn },
    ],
    length(local.assume_resources) == 0 ? [] : [
      { Sid = "AssumeMemberRoles", Effect = "Allow", Action = local.permissions.assume, Resource = local.assume_resources },
    ],
    var.policy_parameter_name == null ? [] : [
      { Sid = "PolicyParameter", Effect = "Allow", Action = local.permissions.policy_parameter, Resource = "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter${var.policy_parameter_name}" },
    ],
    # A policy with unused_for reads each revision's last use from the table.
    var.usage_table == null ? [] : [
      { Sid = "UsageRead", Effect = "Allow", Action = local.permissions.usage_read, Resource = local.usage_table_arn },
    ],
    # The terraform reference source reads state with the function's own role (member roles never do), read
    # only: each bucket's objects, and its listing for a PREFIX/ location.
    length(var.terraform_state_buckets) == 0 ? [] : [
      { Sid = "TerraformStateObjects", Effect = "Allow", Action = local.permissions.terraform_state_objects, Resource = [for name in var.terraform_state_buckets : "arn:${local.partition}:s3:::${name}/*"] },
      { Sid = "TerraformStateBucket", Effect = "Allow", Action = local.permissions.terraform_state_bucket, Resource = [for name in var.terraform_state_buckets : "arn:${local.partition}:s3:::${name}"] },
    ],
  )

  # Not the function's: what the orchestrator's role needs (tdgc register, the Airflow operator). Tags go on
  # with the registration itself (ecs:CreateAction), never on an existing revision.
  register_statements = [
    { Sid = "Register", Effect = "Allow", Action = local.permissions.register, Resource = local.task_definitions },
    {
      Sid       = "TagOnRegister", Effect = "Allow", Action = local.permissions.register_tag, Resource = local.task_definitions,
      Condition = { StringEquals = { "ecs:CreateAction" = "RegisterTaskDefinition" } }
    },
    { Sid = "ReadTaskDefinitions", Effect = "Allow", Action = local.permissions.register_read, Resource = "*" },
    { Sid = "UsageStore", Effect = "Allow", Action = local.permissions.usage_write, Resource = local.usage_table_arn },
  ]

  # Only what is set: the handler treats a missing variable as "use the default". TDGC_REPORT ends in a
  # slash, which makes it a folder: each run's report gets a name of its own inside it.
  environment = { for key, value in {
    TDGC_DRY_RUN          = tostring(var.dry_run)
    TDGC_POLICY           = var.policy_text
    TDGC_POLICY_PARAMETER = var.policy_parameter_name
    TDGC_POLICY_FILE      = var.policy_file
    TDGC_REGIONS          = length(var.regions) > 0 ? join(",", var.regions) : null
    TDGC_PARALLEL         = var.parallel == 1 ? null : tostring(var.parallel)
    TDGC_ROLE_ARNS        = length(var.member_role_arns) > 0 ? join(",", var.member_role_arns) : null
    TDGC_EXTERNAL_ID      = var.external_id
    TDGC_MEMBER_ROLE_NAME = local.lists_organisation ? var.member_role_name : null
    TDGC_ARCHIVE          = local.uses_archive_bucket ? "s3://${local.archive_bucket}/${var.archive_prefix}" : null
    TDGC_REPORT           = local.uses_archive_bucket ? "s3://${local.archive_bucket}/${var.report_prefix}/" : null
    TDGC_ARCHIVE_KMS_KEY  = var.archive_kms_key_arn
  } : key => value if value != null }

  # Organisation mode's roles (organisation.tf), each from tdgc.permissions as the function's is.
  state_machine_name = "${var.name}-organisation"
  state_machine_arn  = "arn:${local.partition}:states:${local.region}:${local.account}:stateMachine:${local.state_machine_name}"
  # The organisation's listing, only when it is listed (on "*": OU and root ARNs hold the organisation's id); the
  # run's target list written under the report prefix, and the key (tdgc.permissions.targets_policy_document).
  org_targets_list = "arn:${local.partition}:s3:::${coalesce(local.archive_bucket, "-")}/${var.report_prefix}/*/targets.json"
  org_report_key = var.archive_kms_key_arn == null ? [] : [
    { Sid = "ReportKey", Effect = "Allow", Action = local.permissions.archive_key, Resource = [var.archive_kms_key_arn] },
  ]
  org_targets_statements = concat(
    !local.lists_organisation ? [] : [
      { Sid = "ListOrganisation", Effect = "Allow", Action = local.permissions.organisation_list, Resource = "*" },
    ],
    [{ Sid = "TargetsList", Effect = "Allow", Action = local.permissions.targets_list, Resource = [local.org_targets_list] }],
    local.org_report_key,
  )
  # The merge: the report prefix only, the bucket's HeadBucket, the key (tdgc.permissions.merge_policy_document).
  org_merge_statements = concat(
    [
      { Sid = "ReportObjects", Effect = "Allow", Action = local.permissions.archive_objects, Resource = ["arn:${local.partition}:s3:::${coalesce(local.archive_bucket, "-")}/${var.report_prefix}/*"] },
      { Sid = "ReportBucket", Effect = "Allow", Action = local.permissions.archive_bucket, Resource = ["arn:${local.partition}:s3:::${coalesce(local.archive_bucket, "-")}"] },
    ],
    local.org_report_key,
  )
  # The state machine: invoke its functions, run the Distributed Map's child executions (its own ARN spelled out:
  # the state machine's arn attribute would depend on this role), read the map's items and write its results under
  # the report prefix (ItemReader, ResultWriter), send a failed run to the dead-letter queue.
  org_function_arns = var.organisation_mode ? [aws_lambda_function.organisation["targets"].arn, aws_lambda_function.this.arn, aws_lambda_function.organisation["merge"].arn] : []
  org_state_machine_statements = concat(
    [
      { Sid = "Invoke", Effect = "Allow", Action = local.permissions.states_invoke, Resource = flatten([for arn in local.org_function_arns : [arn, "${arn}:*"]]) },
      { Sid = "MapRun", Effect = "Allow", Action = local.permissions.states_map_start, Resource = local.state_machine_arn },
      { Sid = "MapRunExecutions", Effect = "Allow", Action = local.permissions.states_map_executions, Resource = "arn:${local.partition}:states:${local.region}:${local.account}:execution:${local.state_machine_name}/*" },
      { Sid = "MapItems", Effect = "Allow", Action = local.permissions.states_map_items, Resource = [local.org_targets_list] },
      { Sid = "MapResults", Effect = "Allow", Action = local.permissions.states_map_results, Resource = ["arn:${local.partition}:s3:::${coalesce(local.archive_bucket, "-")}/${var.report_prefix}/*/map-results/*"] },
    ],
    local.org_report_key,
    [{ Sid = "DeadLetters", Effect = "Allow", Action = local.permissions.dead_letters, Resource = aws_sqs_queue.dead_letters.arn }],
  )
  org_schedule_statements = [
    { Sid = "Start", Effect = "Allow", Action = local.permissions.schedule_start, Resource = local.state_machine_arn },
    { Sid = "DeadLetters", Effect = "Allow", Action = local.permissions.dead_letters, Resource = aws_sqs_queue.dead_letters.arn },
  ]
}

# Partition, region and account from an ARN the module makes: no API call, and the same in provider 5 and 6.
data "aws_arn" "dead_letters" {
  arn = aws_sqs_queue.dead_letters.arn
}

# One queue for both ways a run can be lost: the schedule could not hand the event to Lambda, or Lambda
# dropped it (the run failed, or it waited too long behind the previous run). Alarm on its depth.
resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-dead-letters"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps: time to notice
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# The usage store, if the module is to manage it: the table tdgc.reuse.dynamodb.DynamoStore creates on first use,
# with point-in-time recovery besides. The usage history cannot be rebuilt: DynamoDB refuses to delete the
# table while deletion protection is on, so `terraform destroy` (or create_usage_table = false) fails on it
# and leaves it be (README: how to let it go). prevent_destroy would refuse the whole plan instead, with no
# way to turn it off from outside the module.
resource "aws_dynamodb_table" "usage" {
  count = var.create_usage_table ? 1 : 0

  name         = var.usage_table
  hash_key     = "pk"
  range_key    = "sk"
  billing_mode = "PAY_PER_REQUEST"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # Each use's audit item carries its own expiry (tdgc register's audit_days).
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  deletion_protection_enabled = true
  # No server_side_encryption block: encrypted at rest under the AWS owned key, DynamoDB's default.

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.usage_table != null
      error_message = "create_usage_table needs usage_table, the name of the table to create."
    }
  }
}

# The archive bucket, if the module is to make it. Archives are the only copy of a deleted revision: without
# force_destroy, S3 refuses to delete a bucket that holds an object (a version, a delete marker), so `terraform
# destroy` (or create_archive_bucket = false) fails on it and leaves it be, as DeletionPolicy Retain does in
# the SAM template (README: how to let it go). prevent_destroy would refuse the whole plan instead.
resource "aws_s3_bucket" "archive" {
  count = var.create_archive_bucket ? 1 : 0

  bucket        = var.archive_bucket
  bucket_prefix = var.archive_bucket == null ? "${var.name}-archive-" : null
  force_destroy = false
  tags          = var.tags
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  count  = var.create_archive_bucket ? 1 : 0
  bucket = aws_s3_bucket.archive[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.archive_kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.archive_kms_key_arn
    }
    # With KMS: one data key per bucket and period, not a KMS call per object.
    bucket_key_enabled = var.archive_kms_key_arn != null
  }
}

resource "aws_s3_bucket_public_access_block" "archive" {
  count  = var.create_archive_bucket ? 1 : 0
  bucket = aws_s3_bucket.archive[0].id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: the bucket's owner owns every object.
resource "aws_s3_bucket_ownership_controls" "archive" {
  count  = var.create_archive_bucket ? 1 : 0
  bucket = aws_s3_bucket.archive[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# An archive overwritten (a concurrent run's copy of the same revision) or deleted by hand stays recoverable as a
# noncurrent version until the lifecycle expires it too.
resource "aws_s3_bucket_versioning" "archive" {
  count  = var.create_archive_bucket ? 1 : 0
  bucket = aws_s3_bucket.archive[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  count  = var.create_archive_bucket ? 1 : 0
  bucket = aws_s3_bucket.archive[0].id

  rule {
    id     = "expire-archives"
    status = "Enabled"

    filter {
      prefix = "${var.archive_prefix}/"
    }

    expiration {
      days = var.archive_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.archive_retention_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Reports are kept; what each run overwrites there (the write probe, PREFIX/.tdgc-probe) is not.
  rule {
    id     = "expire-overwritten-reports"
    status = "Enabled"

    filter {
      prefix = "${var.report_prefix}/"
    }

    noncurrent_version_expiration {
      noncurrent_days = var.archive_retention_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.archive]
}

resource "aws_s3_bucket_policy" "archive" {
  count  = var.create_archive_bucket ? 1 : 0
  bucket = aws_s3_bucket.archive[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.archive[0].arn, "${aws_s3_bucket.archive[0].arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  # One change to the bucket's access settings at a time: S3 may answer OperationAborted to concurrent ones.
  depends_on = [aws_s3_bucket_public_access_block.archive]
}

resource "aws_iam_policy" "register" {
  count = var.usage_table == null ? 0 : 1

  name        = "${var.name}-register"
  description = "tdgc register and the Airflow operator, with this module's usage store (tdgc.permissions.register_policy_document)"
  policy      = jsonencode({ Version = "2012-10-17", Statement = local.register_statements })
  tags        = var.tags
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_in_days
  tags              = var.tags
}

resource "aws_iam_role" "function" {
  name = "${var.name}-function"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = var.tags
}

# What tdgc itself calls: without the mutations in a dry run.
resource "aws_iam_role_policy" "tdgc" {
  name   = "tdgc"
  role   = aws_iam_role.function.id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.tdgc_statements })
}

# What Lambda itself needs for this function: its own log group and the failure queue, nothing wider.
resource "aws_iam_role_policy" "runtime" {
  name = "runtime"
  role = aws_iam_role.function.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "Logs", Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.function.arn}:*" },
      { Sid = "FailedInvocations", Effect = "Allow", Action = ["sqs:SendMessage"], Resource = aws_sqs_queue.dead_letters.arn },
    ]
  })
}

resource "aws_lambda_function" "this" {
  function_name    = var.name
  description      = "tdgc, the garbage collector for ECS task-definition revisions"
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)
  handler          = "tdgc.lambda_handler.handler"
  runtime          = "python3.13"
  architectures    = ["arm64"] # tdgc is pure Python: Graviton costs less for the same work
  # tdgc waits on the ECS rate limits, not on CPU, and holds about 60 MB however large the account (it
  # streams family by family), so 256 MB is ample; more memory would buy CPU it cannot use.
  memory_size = 256
  # Lambda's maximum. The handler takes its time budget from the context and stops cleanly before the end;
  # what it did not reach, the next run does (tdgc keeps no state: the account is the state).
  timeout = 900
  # One run at a time: two runs would only compete for the same ECS rate limits. In organisation mode each
  # invocation is one account and region, with rate limits of its own: as many as the map runs at once.
  reserved_concurrent_executions = var.organisation_mode ? var.max_concurrency : 1
  role                           = aws_iam_role.function.arn

  environment {
    variables = local.environment
  }

  tags = var.tags

  lifecycle {
    # The handler refuses two policy sources at every run: refuse them at plan time instead.
    precondition {
      condition     = length(compact([var.policy_text, var.policy_parameter_name, var.policy_file])) <= 1
      error_message = "Set one of policy_text, policy_parameter_name and policy_file, not several."
    }
    precondition {
      condition     = var.archive_kms_key_arn == null || local.uses_archive_bucket
      error_message = "archive_kms_key_arn needs a bucket: archive_bucket or create_archive_bucket."
    }
    precondition {
      condition     = !var.organisation_mode || local.uses_archive_bucket
      error_message = "organisation_mode needs a bucket, archive_bucket or create_archive_bucket, where the targets' reports meet to be merged."
    }
  }

  # The log group first, or Lambda makes its own without a retention; the permissions before the first run.
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.tdgc, aws_iam_role_policy.runtime]
}

# The schedule invokes asynchronously. While a run holds the one concurrent execution, the next event waits
# in Lambda's queue; after a minute it is dropped to the dead-letter queue instead of starting late, behind a
# run that may have used the whole 15 minutes. A failed run is not retried: the next scheduled run starts from
# the account as it is, which is the same thing.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_event_age_in_seconds = 60
  maximum_retry_attempts       = 0

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dead_letters.arn
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name = "${var.name}-scheduler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
  tags = var.tags
}

# In organisation mode: start the state machine instead (tdgc.permissions.schedule_policy_document).
resource "aws_iam_role_policy" "scheduler" {
  name = var.organisation_mode ? "start" : "invoke"
  role = aws_iam_role.scheduler.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = var.organisation_mode ? local.org_schedule_statements : [
      { Sid = "Invoke", Effect = "Allow", Action = ["lambda:InvokeFunction"], Resource = aws_lambda_function.this.arn },
      { Sid = "DeadLetters", Effect = "Allow", Action = ["sqs:SendMessage"], Resource = aws_sqs_queue.dead_letters.arn },
    ]
  })
}

resource "aws_scheduler_schedule" "this" {
  name                = var.name
  schedule_expression = var.schedule_expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    # In organisation mode the state machine, which runs the function once per target: switching the mode
    # changes the target in place.
    arn      = var.organisation_mode ? aws_sfn_state_machine.organisation[0].arn : aws_lambda_function.this.arn
    role_arn = aws_iam_role.scheduler.arn
    # The context attributes the handler logs and puts in its report (in organisation mode, the execution's
    # input), to trace a run to its schedule.
    # Written out, not jsonencode()d: that would escape the placeholders' < and >, which Scheduler must see.
    input = chomp(<<-EOT
      {"schedule": "<aws.scheduler.schedule-arn>", "scheduled_time": "<aws.scheduler.scheduled-time>", "execution_id": "<aws.scheduler.execution-id>", "attempt": "<aws.scheduler.attempt-number>"}
    EOT
    )

    # Scheduler retries only a hand-over Lambda (or Step Functions) did not accept, so a retry never starts a
    # second run; within five minutes it cannot collide with the next scheduled event either.
    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 300
    }

    dead_letter_config {
      arn = aws_sqs_queue.dead_letters.arn
    }
  }

  depends_on = [aws_iam_role_policy.scheduler]
}

# Alarms on the metrics each run logs in Embedded Metric Format (tdgc.report.metrics): namespace tdgc, dimension
# Function, one series per deployment whatever the targets or organisation children.
resource "aws_cloudwatch_metric_alarm" "quota_headroom" {
  alarm_name          = "${var.name}-quota-headroom"
  alarm_description   = "A family is within ${var.quota_headroom_alarm_threshold} revision numbers of ECS's quota of 1,000,000: the run's report (families, closest first) says which, and how fast it is growing."
  namespace           = "tdgc"
  metric_name         = "QuotaHeadroomMin"
  dimensions          = { Function = aws_lambda_function.this.function_name }
  statistic           = "Minimum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = var.quota_headroom_alarm_threshold
  comparison_operator = "LessThanThreshold"
  # A run publishes once per schedule: between runs the alarm keeps the state the last run set.
  treat_missing_data = "ignore"
  alarm_actions      = var.alarm_actions
  ok_actions         = var.alarm_actions
  tags               = var.tags
}

resource "aws_cloudwatch_metric_alarm" "failures" {
  alarm_name          = "${var.name}-failures"
  alarm_description   = "A run had failures: actions ECS refused, or targets an AWS error stopped. The run's report and its \"tdgc summary\" log line say which."
  namespace           = "tdgc"
  metric_name         = "Failed"
  dimensions          = { Function = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
