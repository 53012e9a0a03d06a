#!/usr/bin/env bash
# The ZenML stack that `python run.py aws ...` registers for you (annotation_loop/zenml_integration/stacks.py),
# as plain `zenml` commands: read it to see what exists, or run it once to set the stack up
# by hand. Values come from the same LOOP_* / AWS_* variables as run.py, with placeholders.
#
# Run from the project root with the project's virtualenv, so that `zenml` sees the
# project's ZenML state (.loop/zenml):  bash cloud_config/aws/stack.sh
# Re-running fails on "already exists": change a value later with
# `zenml secret update NAME --KEY=VALUE` or `zenml artifact-store update NAME --KEY=VALUE`.
set -euo pipefail

# Secret values reach `zenml secret create` as owner-only files (`--KEY=@file`), never as
# arguments: every user of the machine can read a command line (`ps`).
SECRET_DIR=$(mktemp -d)
trap 'rm -rf "$SECRET_DIR"' EXIT
secret_file() {  # secret_file NAME VALUE: prints the path of a 0600 file holding VALUE
    (umask 077 && printf '%s' "$2" >"$SECRET_DIR/$1")
    printf '%s' "$SECRET_DIR/$1"
}

BUCKET="${LOOP_S3_BUCKET:-annotation-loop}"               # holds <dataset>/batch_N/ and zenml-artifacts/
REGION="${AWS_DEFAULT_REGION:-us-east-1}"
# Label Studio as the ZenML annotator sees it: scheme+host and port are separate settings.
# https://label-studio.example.com -> instance_url https://label-studio.example.com, port 443.
# Always pass the port: the annotator's default port is 8093, not the scheme's.
LABEL_STUDIO_INSTANCE_URL="${LABEL_STUDIO_INSTANCE_URL:-https://label-studio.example.com}"
LABEL_STUDIO_PORT="${LABEL_STUDIO_PORT:-443}"
: "${LOOP_LABEL_STUDIO_API_KEY:?set LOOP_LABEL_STUDIO_API_KEY (Label Studio > Account & Settings)}"

# 1. Secrets: the Label Studio API key, and the keys of the IAM user that holds
#    iam-policy.json. Leave the S3 secret out (and drop --authentication_secret below) where
#    boto3 finds credentials itself: an instance profile, IRSA, SSO or ~/.aws.
zenml secret create annotation-loop-label-studio \
    --api_key="@$(secret_file api_key "$LOOP_LABEL_STUDIO_API_KEY")"
: "${AWS_ACCESS_KEY_ID:?set AWS_ACCESS_KEY_ID}" "${AWS_SECRET_ACCESS_KEY:?set AWS_SECRET_ACCESS_KEY}"
zenml secret create annotation-loop-s3 \
    --aws_access_key_id="$AWS_ACCESS_KEY_ID" \
    --aws_secret_access_key="@$(secret_file aws_secret_access_key "$AWS_SECRET_ACCESS_KEY")"

# 2. Artifact store next to the data. For MinIO or another S3-compatible server add
#    "endpoint_url": "https://minio.example.com" to client_kwargs (LOOP_S3_ENDPOINT_URL).
zenml artifact-store register annotation-loop-aws-artifacts --flavor=s3 \
    --path="s3://$BUCKET/zenml-artifacts" \
    --client_kwargs="{\"region_name\": \"$REGION\"}" \
    --authentication_secret=annotation-loop-s3

# 3. Label Studio annotator; its API key is read from the secret, never stored in the config.
zenml annotator register annotation-loop-label-studio --flavor=label_studio \
    --instance_url="$LABEL_STUDIO_INSTANCE_URL" \
    --port="$LABEL_STUDIO_PORT" \
    --authentication_secret=annotation-loop-label-studio

# 4. The stack: local orchestrator ("default"), S3 artifacts, Label Studio.
zenml stack register annotation-loop-aws \
    -a annotation-loop-aws-artifacts \
    -o default \
    --annotator annotation-loop-label-studio
zenml stack set annotation-loop-aws
