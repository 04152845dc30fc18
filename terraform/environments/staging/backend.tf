# Backend blocks cannot use variables: configure at init time, e.g.
#   terraform -chdir=terraform/environments/ENV init \
#     -backend-config=bucket=STATE_BUCKET -backend-config=prefix=triage/ENV
terraform {
  backend "gcs" {}
}
