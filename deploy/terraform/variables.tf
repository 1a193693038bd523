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
  description = "true only plans and reports; false deregisters and deletes what the policy releases."
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

variable "terraform_state_buckets" {
  description = "Buckets holding Terraform/OpenTofu state that the terraform reference source reads; the function may only read them (their objects and listing), with its own role, never a member role. Name the state locations themselves in the policy's [references] terraform_state."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.terraform_state_buckets : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", name))])
    error_message = "terraform_state_buckets must be bucket names, not s3:// locations or ARNs."
  }
}

variable "archive_bucket" {
  description = "An existing S3 bucket for each run's report and each deleted revision's archive. null: neither goes to S3."
  type        = string
  default     = null
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
