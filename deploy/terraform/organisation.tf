# Organisation mode (organisation_mode = true; docs/design.md, "Organisation mode"): a state machine lists the
# targets (the targets function), runs the collector once per account and region in a Distributed Map, and
# merges the targets' reports (the merge function). The same definition as the SAM template's
# (organisation.asl.json; tests/test_org.py holds the two equal). Two small functions of the same code, each
# with a role of its own: the listing never touches ECS or S3, the merge only the report prefix.

locals {
  lambda_trust = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  org_count = var.organisation_mode ? 1 : 0
}

resource "aws_cloudwatch_log_group" "targets" {
  count             = local.org_count
  name              = "/aws/lambda/${var.name}-targets"
  retention_in_days = var.log_retention_in_days
  tags              = var.tags
}

resource "aws_iam_role" "targets" {
  count              = local.org_count
  name               = "${var.name}-targets"
  assume_role_policy = local.lambda_trust
  tags               = var.tags
}

# tdgc.permissions.targets_policy_document: the organisation's listing, only when it is listed.
resource "aws_iam_role_policy" "targets" {
  count  = local.lists_organisation ? 1 : 0
  name   = "tdgc"
  role   = aws_iam_role.targets[0].id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.org_targets_statements })
}

resource "aws_iam_role_policy" "targets_runtime" {
  count = local.org_count
  name  = "runtime"
  role  = aws_iam_role.targets[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Sid = "Logs", Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.targets[0].arn}:*" }]
  })
}

resource "aws_lambda_function" "targets" {
  count            = local.org_count
  function_name    = "${var.name}-targets"
  description      = "tdgc organisation mode, first state: the accounts and regions to collect"
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)
  handler          = "tdgc.lambda_handler.targets_handler"
  runtime          = "python3.13"
  architectures    = ["arm64"]
  memory_size      = 256
  timeout          = 300 # a listing: 20 accounts a page, a page per OU
  role             = aws_iam_role.targets[0].arn

  environment {
    variables = { for key, value in {
      TDGC_REGIONS              = length(var.regions) > 0 ? join(",", var.regions) : null
      TDGC_ROLE_ARNS            = length(var.member_role_arns) > 0 ? join(",", var.member_role_arns) : null
      TDGC_MEMBER_ROLE_NAME     = local.lists_organisation ? var.member_role_name : null
      TDGC_ORGANIZATIONAL_UNITS = local.lists_organisation && length(var.organizational_units) > 0 ? join(",", var.organizational_units) : null
    } : key => value if value != null }
  }

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.targets, aws_iam_role_policy.targets, aws_iam_role_policy.targets_runtime]
}

resource "aws_cloudwatch_log_group" "merge" {
  count             = local.org_count
  name              = "/aws/lambda/${var.name}-merge"
  retention_in_days = var.log_retention_in_days
  tags              = var.tags
}

resource "aws_iam_role" "merge" {
  count              = local.org_count
  name               = "${var.name}-merge"
  assume_role_policy = local.lambda_trust
  tags               = var.tags
}

# tdgc.permissions.merge_policy_document: the report prefix only, the bucket's HeadBucket, the key.
resource "aws_iam_role_policy" "merge" {
  count  = local.org_count
  name   = "tdgc"
  role   = aws_iam_role.merge[0].id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.org_merge_statements })
}

resource "aws_iam_role_policy" "merge_runtime" {
  count = local.org_count
  name  = "runtime"
  role  = aws_iam_role.merge[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Sid = "Logs", Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.merge[0].arn}:*" }]
  })
}

resource "aws_lambda_function" "merge" {
  count            = local.org_count
  function_name    = "${var.name}-merge"
  description      = "tdgc organisation mode, last state: the targets' reports merged into one"
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)
  handler          = "tdgc.lambda_handler.merge_handler"
  runtime          = "python3.13"
  architectures    = ["arm64"]
  memory_size      = 512 # one target's report in memory at a time; the merged one is spooled to disk
  timeout          = 900
  role             = aws_iam_role.merge[0].arn

  environment {
    variables = { for key, value in {
      TDGC_REPORT          = local.uses_archive_bucket ? "s3://${local.archive_bucket}/${var.report_prefix}/" : null
      TDGC_ARCHIVE_KMS_KEY = var.archive_kms_key_arn
    } : key => value if value != null }
  }

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.merge, aws_iam_role_policy.merge, aws_iam_role_policy.merge_runtime]
}

resource "aws_iam_role" "state_machine" {
  count = local.org_count
  name  = "${var.name}-state-machine"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "states.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
  tags = var.tags
}

# tdgc.permissions.state_machine_policy_document
resource "aws_iam_role_policy" "state_machine" {
  count  = local.org_count
  name   = "tdgc"
  role   = aws_iam_role.state_machine[0].id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.org_state_machine_statements })
}

resource "aws_sfn_state_machine" "organisation" {
  count    = local.org_count
  name     = local.state_machine_name
  type     = "STANDARD"
  role_arn = aws_iam_role.state_machine[0].arn
  definition = templatefile("${path.module}/organisation.asl.json", {
    partition             = local.partition
    targets_function_arn  = aws_lambda_function.targets[0].arn
    function_arn          = aws_lambda_function.this.arn
    merge_function_arn    = aws_lambda_function.merge[0].arn
    dead_letter_queue_url = aws_sqs_queue.dead_letters.url
    max_concurrency       = var.max_concurrency
    target_time_budget    = var.target_time_budget
  })
  tags       = var.tags
  depends_on = [aws_iam_role_policy.state_machine]
}

resource "aws_iam_role" "organisation_schedule" {
  count = local.org_count
  name  = "${var.name}-organisation-schedule"
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

# tdgc.permissions.schedule_policy_document
resource "aws_iam_role_policy" "organisation_schedule" {
  count  = local.org_count
  name   = "start"
  role   = aws_iam_role.organisation_schedule[0].id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.org_schedule_statements })
}

# The one schedule of organisation mode: it starts the state machine (the function's own is disabled).
resource "aws_scheduler_schedule" "organisation" {
  count               = local.org_count
  name                = local.state_machine_name
  schedule_expression = var.schedule_expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.organisation[0].arn
    role_arn = aws_iam_role.organisation_schedule[0].arn
    # Kept in the execution's input, to trace a run to its schedule (written out: jsonencode would escape < >).
    input = chomp(<<-EOT
      {"schedule": "<aws.scheduler.schedule-arn>", "scheduled_time": "<aws.scheduler.scheduled-time>", "execution_id": "<aws.scheduler.execution-id>", "attempt": "<aws.scheduler.attempt-number>"}
    EOT
    )

    # A retry only when Step Functions did not accept the start: a retry never starts a second run.
    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 300
    }

    dead_letter_config {
      arn = aws_sqs_queue.dead_letters.arn
    }
  }

  depends_on = [aws_iam_role_policy.organisation_schedule]
}
