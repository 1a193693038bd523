variable "name" {
  description = "Name of the function and schedule, and prefix of the roles and queue."
  type        = string
  default     = "tdgc"
}

variable "package_path" {
  description = "The zip built by `python -m tdgc.package` (dist/tdgc-lambda.zip)."
  type        = string
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression, rate(...) or cron(...) in UTC. A run deregisters at most about 450 revisions, so a backlog takes several runs."
  type        = string
  default     = "rate(1 hour)"
}

variable "dry_run" {
  description = "true only plans and reports, and the function's role cannot deregister or delete anything; false deregisters and deletes what the policy releases."
  type        = bool
  default     = true
}

variable "policy_text" {
  description = "The policy as TOML. With none of policy_text, policy_parameter_name and policy_file, tdgc's built-in defaults apply; set one at most."
  type        = string
  default     = null
}

variable "policy_parameter_name" {
  description = "An SSM Parameter Store parameter (a name starting with /) holding the policy TOML; the function may read only it."
  type        = string
  default     = null

  validation {
    condition     = var.policy_parameter_name == null || can(regex("^(/[a-zA-Z0-9_.-]+)+$", var.policy_parameter_name))
    error_message = "policy_parameter_name must be a hierarchical name such as /tdgc/policy."
  }
}

variable "policy_file" {
  description = "A policy packaged in the zip (`python -m tdgc.package --policy FILE` puts it at policy.toml)."
  type        = string
  default     = null
}

variable "regions" {
  description = "Regions to collect in, or [\"all\"] for every region enabled in the account. Empty: the provider's region."
  type        = list(string)
  default     = []
}

variable "parallel" {
  description = "How many targets (member_role_arns' accounts times regions) one run collects at once; 1 collects them one after another. Each account and region has ECS rate limits of its own. Organisation mode collects one target per invocation (max_concurrency sets how many at once), so there it changes nothing."
  type        = number
  default     = 1

  validation {
    condition     = var.parallel >= 1 && var.parallel <= 64 && var.parallel == floor(var.parallel)
    error_message = "parallel must be a whole number from 1 to 64."
  }
}

variable "terraform_state_buckets" {
  description = "Buckets holding Terraform/OpenTofu state that the terraform reference source reads; the function may only read them (their objects and listing), with its own role, never a member role. Name the state locations themselves in the policy's [references] terraform_state."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.terraform_state_buckets : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", name))])
    error_message = "terraform_state_buckets must be bucket names, not s3:// locations or ARNs."
  }
}

variable "codedeploy_appspec_buckets" {
  description = "Buckets holding the ECS blue/green AppSpecs CodeDeploy deployments keep in S3 (such as CodePipeline artifact buckets), which the codedeploy reference source reads; the function may only read their objects (s3:GetObject), in its own account. Member roles need the same: deploy/stackset's CodeDeployAppSpecBuckets."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.codedeploy_appspec_buckets : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", name))])
    error_message = "codedeploy_appspec_buckets must be bucket names, not s3:// locations or ARNs."
  }
}

variable "archive_bucket" {
  description = "An S3 bucket for each run's report and each deleted revision's archive: an existing one, or with create_archive_bucket the name of the one to create. null: neither goes to S3, unless create_archive_bucket, which then names the bucket itself."
  type        = string
  default     = null

  validation {
    condition     = var.archive_bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.archive_bucket))
    error_message = "archive_bucket must be a bucket name, not an s3:// location or an ARN."
  }
}

variable "create_archive_bucket" {
  description = "true: the module creates the archive bucket (named archive_bucket, or NAME-archive-...), encrypted, private, TLS-only, versioned, archives expiring after archive_retention_days; Terraform cannot destroy it once it holds an object."
  type        = bool
  default     = false
}

variable "archive_kms_key_arn" {
  description = "A customer-managed KMS key for the archives and reports (SSE-KMS): the function may generate data keys and decrypt with this key only, and a bucket the module creates is encrypted under it. null: SSE-S3."
  type        = string
  default     = null

  validation {
    condition     = var.archive_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.archive_kms_key_arn))
    error_message = "archive_kms_key_arn must be a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID), not an alias."
  }
}

variable "archive_retention_days" {
  description = "In a bucket the module creates, how long an archive is kept (and an overwritten version of one, after it was overwritten) before S3 expires it."
  type        = number
  default     = 400

  validation {
    condition     = var.archive_retention_days >= 1 && var.archive_retention_days == floor(var.archive_retention_days)
    error_message = "archive_retention_days must be a whole number of days, at least 1."
  }
}

variable "archive_prefix" {
  description = "Key prefix in archive_bucket for archived revisions (ACCOUNT/REGION/FAMILY/REVISION.json)."
  type        = string
  default     = "tdgc/archive"

  validation {
    condition     = can(regex("^[^/]+(/[^/]+)*$", var.archive_prefix))
    error_message = "archive_prefix must be a key prefix without leading or trailing slashes, such as tdgc/archive."
  }
}

variable "report_prefix" {
  description = "Key prefix in archive_bucket for each run's JSON report (one object per run)."
  type        = string
  default     = "tdgc/reports"

  validation {
    condition     = can(regex("^[^/]+(/[^/]+)*$", var.report_prefix))
    error_message = "report_prefix must be a key prefix without leading or trailing slashes, such as tdgc/reports."
  }
}

variable "member_role_arns" {
  description = "Roles to assume in member accounts; the function may assume only these."
  type        = list(string)
  default     = []
}

variable "external_id" {
  description = "The external ID the member roles' trust policies require, if any."
  type        = string
  default     = null
}

variable "usage_table" {
  description = "The usage store's DynamoDB table, which `tdgc register` writes and a policy's unused_for reads; the function may scan only it. The policy names it ([usage] store = \"dynamodb://TABLE\"). null: no usage store."
  type        = string
  default     = null

  validation {
    condition     = var.usage_table == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.usage_table))
    error_message = "usage_table must be a DynamoDB table name: 3 to 255 of A-Z a-z 0-9 _ . -"
  }
}

variable "create_usage_table" {
  description = "true: the module creates usage_table (deletion-protected). false: an existing table, or the one `tdgc register` creates on first use."
  type        = bool
  default     = false
}

variable "log_retention_in_days" {
  description = "How long the function's logs are kept."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}

variable "organisation_mode" {
  description = "true: the schedule starts a Step Functions state machine that lists the targets (member_role_arns' accounts, or with member_role_name the organisation's ACTIVE accounts), collects each account and region in an invocation of its own (a Distributed Map, max_concurrency at once) and merges their reports. Needs a bucket (archive_bucket or create_archive_bucket). false: one function run collects every target in turn."
  type        = bool
  default     = false
}

variable "member_role_name" {
  description = "Organisation mode without member_role_arns: the role (NAME or PATH/NAME) to assume in each account of the organisation; the function may assume only roles of this name. null: the function's own account only. Listing the organisation needs the management account or a delegated administrator."
  type        = string
  default     = null

  validation {
    condition     = var.member_role_name == null || can(regex("^([\\w+=,.@-]+/)*[\\w+=,.@-]{1,64}$", var.member_role_name))
    error_message = "member_role_name must be a role name, NAME or PATH/NAME."
  }
}

variable "organizational_units" {
  description = "Organisation mode with member_role_name: only the accounts under these OU ids (ou-...) or root (r-...), and the OUs below them. Empty: every ACTIVE account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.organizational_units : can(regex("^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$", id))])
    error_message = "organizational_units must be OU ids (ou-...) or a root id (r-...)."
  }
}

variable "max_concurrency" {
  description = "Organisation mode: how many targets are collected at once (the Distributed Map's MaxConcurrency and the function's reserved concurrency)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_concurrency >= 1 && var.max_concurrency <= 1000 && var.max_concurrency == floor(var.max_concurrency)
    error_message = "max_concurrency must be a whole number from 1 to 1000."
  }
}

variable "target_time_budget" {
  description = "Organisation mode: the seconds each target's run may take (within the function's 900 s timeout)."
  type        = number
  default     = 840

  validation {
    condition     = var.target_time_budget >= 60 && var.target_time_budget <= 880
    error_message = "target_time_budget must be between 60 and 880 seconds."
  }
}

variable "quota_headroom_alarm_threshold" {
  description = "An alarm goes off when a family's headroom to ECS's quota of 1,000,000 revisions (1,000,000 minus its highest revision number: numbers are never reused) falls below this."
  type        = number
  default     = 50000

  validation {
    condition     = var.quota_headroom_alarm_threshold >= 0 && var.quota_headroom_alarm_threshold <= 1000000
    error_message = "quota_headroom_alarm_threshold: between 0 and 1,000,000."
  }
}

variable "alarm_actions" {
  description = "What the alarms notify, going off and back to OK: SNS topic ARNs, say. Empty: the alarms only change state."
  type        = list(string)
  default     = []
}
