#!/usr/bin/env bash
# The ZenML stack that `python run.py gcp ...` registers for you (annotation_loop/zenml_integration/stacks.py),
# as plain `zenml` commands: read it to see what exists, or run it once to set the stack up
# by hand. Values come from the same LOOP_* / GOOGLE_* variables as run.py, with placeholders.
#
# Run from the project root with the project's virtualenv, so that `zenml` sees the
# project's ZenML state (.loop/zenml):  bash cloud_config/gcp/stack.sh
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

BUCKET="${LOOP_GCS_BUCKET:-annotation-loop}"              # holds <dataset>/batch_N/ and zenml-artifacts/
KEY_FILE="${GOOGLE_APPLICATION_CREDENTIALS:?set GOOGLE_APPLICATION_CREDENTIALS to the key.json of README.md}"
# Label Studio as the ZenML annotator sees it: scheme+host and port are separate settings.
# Always pass the port: the annotator's default port is 8093, not the scheme's.
LABEL_STUDIO_INSTANCE_URL="${LABEL_STUDIO_INSTANCE_URL:-https://label-studio.example.com}"
LABEL_STUDIO_PORT="${LABEL_STUDIO_PORT:-443}"
: "${LOOP_LABEL_STUDIO_API_KEY:?set LOOP_LABEL_STUDIO_API_KEY (Label Studio > Account & Settings)}"

# 1. Secrets: the Label Studio API key, and the service account's JSON key as the single
#    `token` value of ZenML's GCP secret schema (`@file` makes the CLI read the file).
#    Leave the GCP secret out (and drop --authentication_secret below) where Application
#    Default Credentials work: GKE/Vertex workload identity, `gcloud auth application-default login`.
zenml secret create annotation-loop-label-studio \
    --api_key="@$(secret_file api_key "$LOOP_LABEL_STUDIO_API_KEY")"
zenml secret create annotation-loop-gcp --token="@$KEY_FILE"

# 2. Artifact store next to the data.
zenml artifact-store register annotation-loop-gcp-artifacts --flavor=gcp \
    --path="gs://$BUCKET/zenml-artifacts" \
    --authentication_secret=annotation-loop-gcp

# 3. Label Studio annotator; its API key is read from the secret, never stored in the config.
zenml annotator register annotation-loop-label-studio --flavor=label_studio \
    --instance_url="$LABEL_STUDIO_INSTANCE_URL" \
    --port="$LABEL_STUDIO_PORT" \
    --authentication_secret=annotation-loop-label-studio

# 4. The stack: local orchestrator ("default"), GCS artifacts, Label Studio.
zenml stack register annotation-loop-gcp \
    -a annotation-loop-gcp-artifacts \
    -o default \
    --annotator annotation-loop-label-studio
zenml stack set annotation-loop-gcp
