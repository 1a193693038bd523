# Organisation mode (organisation_mode = true; docs/design.md, "Organisation mode"): a state machine lists the
# targets (the targets function), runs the collector once per account and region in a Distributed Map, and
# merges the targets' reports (the merge function). The same definition as the SAM template's
# (organisation.asl.json; tests/deploy/test_org.py holds the two equal). Two small functions of the same code, each
# with a role of its own: the listing never touches ECS and writes only the run's target list, the merge only the
# report prefix. The module's one
# schedule (main.tf) starts the state machine.

locals {
  lambda_trust = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  org_count = var.organisation_mode ? 1 : 0
  # The two small functions, by what sets them apart; each gets a log group, a role and the function below
  # (NAME-targets, NAME-merge). statements: what tdgc calls, beside the runtime's logs.
  org_functions = { for name, function in {
    targets = {
      description       = "tdgc organisation mode, first state: the accounts and regions to collect"
      handler           = "tdgc.lambda_handler.targets_handler"
      memory_size       = 256
      ephemeral_storage = 512 # Lambda's default: the target list is a few MB at most
      timeout           = 300 # a listing: 20 accounts a page, a page per OU
      # tdgc.permissions.targets_policy_document: the organisation's listing, only when it is listed; the target list.
      statements = local.org_targets_statements
      environment = {
        TDGC_REGIONS              = length(var.regions) > 0 ? join(",", var.regions) : null
        TDGC_ROLE_ARNS            = length(var.member_role_arns) > 0 ? join(",", var.member_role_arns) : null
        TDGC_MEMBER_ROLE_NAME     = local.lists_organisation ? var.member_role_name : null
        TDGC_ORGANIZATIONAL_UNITS = local.lists_organisation && length(var.organizational_units) > 0 ? join(",", var.organizational_units) : null
        TDGC_REPORT               = local.uses_archive_bucket ? "s3://${local.archive_bucket}/${var.report_prefix}/" : null
        TDGC_ARCHIVE_KMS_KEY      = var.archive_kms_key_arn
      }
    }
    merge = {
      description = "tdgc organisation mode, last state: the targets' reports merged into one"
      handler     = "tdgc.lambda_handler.merge_handler"
      memory_size = 512 # a few targets' reports in memory at a time (tdgc.job.MERGE_READ_AHEAD)
      # The merged report, every target's decisions, is spooled to /tmp: at its most (tdgc.job.MERGE_DISK_MB).
      ephemeral_storage = 10240
      timeout           = 900
      # tdgc.permissions.merge_policy_document: the report prefix only, the bucket's HeadBucket, the key.
      statements = local.org_merge_statements
      environment = {
        TDGC_REPORT          = local.uses_archive_bucket ? "s3://${local.archive_bucket}/${var.report_prefix}/" : null
        TDGC_ARCHIVE_KMS_KEY = var.archive_kms_key_arn
      }
    }
  } : name => function if var.organisation_mode }
}

resource "aws_cloudwatch_log_group" "organisation" {
  for_each          = local.org_functions
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_in_days
  tags              = var.tags
}

resource "aws_iam_role" "organisation" {
  for_each           = local.org_functions
  name               = "${var.name}-${each.key}"
  assume_role_policy = local.lambda_trust
  tags               = var.tags
}

# With member_role_arns the targets function lists nothing: its role writes the target list alone.
resource "aws_iam_role_policy" "organisation" {
  for_each = { for name, function in local.org_functions : name => function.statements if length(function.statements) > 0 }
  name     = "tdgc"
  role     = aws_iam_role.organisation[each.key].id
  policy   = jsonencode({ Version = "2012-10-17", Statement = each.value })
}

resource "aws_iam_role_policy" "organisation_runtime" {
  for_each = local.org_functions
  name     = "runtime"
  role     = aws_iam_role.organisation[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Sid = "Logs", Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.organisation[each.key].arn}:*" }]
  })
}

resource "aws_lambda_function" "organisation" {
  for_each         = local.org_functions
  function_name    = "${var.name}-${each.key}"
  description      = each.value.description
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)
  handler          = each.value.handler
  runtime          = "python3.13"
  architectures    = ["arm64"]
  memory_size      = each.value.memory_size
  timeout          = each.value.timeout
  role             = aws_iam_role.organisation[each.key].arn

  ephemeral_storage {
    size = each.value.ephemeral_storage
  }

  environment {
    variables = { for key, value in each.value.environment : key => value if value != null }
  }

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.organisation, aws_iam_role_policy.organisation, aws_iam_role_policy.organisation_runtime]
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
    targets_function_arn  = aws_lambda_function.organisation["targets"].arn
    function_arn          = aws_lambda_function.this.arn
    merge_function_arn    = aws_lambda_function.organisation["merge"].arn
    dead_letter_queue_url = aws_sqs_queue.dead_letters.url
    max_concurrency       = var.max_concurrency
    target_time_budget    = var.target_time_budget
  })
  tags       = var.tags
  depends_on = [aws_iam_role_policy.state_machine]
}
