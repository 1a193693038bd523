output "function_name" {
  description = "The Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "The Lambda function's ARN."
  value       = aws_lambda_function.this.arn
}

output "function_role_arn" {
  description = "The function's role: tdgc's permissions. Member accounts' roles trust this."
  value       = aws_iam_role.function.arn
}

output "schedule_arn" {
  description = "The EventBridge Scheduler schedule (in organisation mode, it starts the state machine)."
  value       = aws_scheduler_schedule.this.arn
}

output "dead_letter_queue_url" {
  description = "Runs that were lost (not handed over, failed, or dropped behind a running one) land here."
  value       = aws_sqs_queue.dead_letters.url
}

output "dead_letter_queue_arn" {
  description = "The dead-letter queue's ARN, for an alarm on its depth."
  value       = aws_sqs_queue.dead_letters.arn
}

output "log_group_name" {
  description = "The function's logs."
  value       = aws_cloudwatch_log_group.function.name
}

output "archive_bucket_name" {
  description = "Where the archives and reports go (created with create_archive_bucket; null: none)."
  value       = local.archive_bucket
}

output "usage_table_name" {
  description = "The usage store (null: none): name it in the policy as [usage] store = \"dynamodb://NAME\", and in tdgc register --store."
  value       = try(aws_dynamodb_table.usage[0].name, var.usage_table)
}

output "usage_table_arn" {
  description = "The usage store's table ARN (null: none)."
  value       = try(aws_dynamodb_table.usage[0].arn, local.usage_table_arn)
}

output "register_policy_arn" {
  description = "A managed policy for the orchestrator's role (tdgc register, the Airflow operator), scoped to the table (null: no table)."
  value       = one(aws_iam_policy.register[*].arn)
}

output "state_machine_arn" {
  description = "Organisation mode's state machine (null: not in organisation mode); each execution's reports are under report_prefix/EXECUTION_NAME/."
  value       = one(aws_sfn_state_machine.organisation[*].arn)
}

output "quota_headroom_alarm_name" {
  description = "The alarm on the smallest headroom to the quota of any family."
  value       = aws_cloudwatch_metric_alarm.quota_headroom.alarm_name
}

output "failures_alarm_name" {
  description = "The alarm on a run's failures."
  value       = aws_cloudwatch_metric_alarm.failures.alarm_name
}
