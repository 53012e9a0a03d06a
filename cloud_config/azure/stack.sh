#!/usr/bin/env bash
# The ZenML stack that `python run.py azure ...` registers for you (annotation_loop/zenml_integration/stacks.py),
# as plain `zenml` commands: read it to see what exists, or run it once to set the stack up
# by hand. Values come from the same LOOP_* / AZURE_STORAGE_* variables as run.py.
#
# Run from the project root with the project's virtualenv, so that `zenml` sees the
# project's ZenML state (.loop/zenml):  bash cloud_config/azure/stack.sh
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

CONTAINER="${LOOP_AZURE_CONTAINER:-annotation-loop}"      # holds <dataset>/batch_N/ and zenml-artifacts/
# Label Studio as the ZenML annotator sees it: scheme+host and port are separate settings.
# Always pass the port: the annotator's default port is 8093, not the scheme's.
LABEL_STUDIO_INSTANCE_URL="${LABEL_STUDIO_INSTANCE_URL:-https://label-studio.example.com}"
LABEL_STUDIO_PORT="${LABEL_STUDIO_PORT:-443}"
: "${LOOP_LABEL_STUDIO_API_KEY:?set LOOP_LABEL_STUDIO_API_KEY (Label Studio > Account & Settings)}"

# 1. Secrets: the Label Studio API key, and the storage credentials in ZenML's Azure secret
#    schema. run.py stores the first of these that is set: a connection string, an account
#    name + key, an account name + SAS token (see README.md for the trade-offs). Leave the Azure
#    secret out (and drop --authentication_secret below) for Microsoft Entra credentials:
#    adlfs then reads AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_CLIENT_ID /
#    _CLIENT_SECRET / _TENANT_ID, or a managed identity, from the environment.
zenml secret create annotation-loop-label-studio \
    --api_key="@$(secret_file api_key "$LOOP_LABEL_STUDIO_API_KEY")"
if [[ -n "${AZURE_STORAGE_CONNECTION_STRING:-}" ]]; then
    zenml secret create annotation-loop-azure \
        --connection_string="@$(secret_file connection_string "$AZURE_STORAGE_CONNECTION_STRING")"
elif [[ -n "${AZURE_STORAGE_ACCOUNT_KEY:-}" ]]; then
    zenml secret create annotation-loop-azure \
        --account_name="${AZURE_STORAGE_ACCOUNT_NAME:?set AZURE_STORAGE_ACCOUNT_NAME}" \
        --account_key="@$(secret_file account_key "$AZURE_STORAGE_ACCOUNT_KEY")"
else
    : "${AZURE_STORAGE_SAS_TOKEN:?set AZURE_STORAGE_CONNECTION_STRING, _ACCOUNT_KEY or _SAS_TOKEN}"
    zenml secret create annotation-loop-azure \
        --account_name="${AZURE_STORAGE_ACCOUNT_NAME:?set AZURE_STORAGE_ACCOUNT_NAME}" \
        --sas_token="@$(secret_file sas_token "$AZURE_STORAGE_SAS_TOKEN")"
fi

# 2. Artifact store next to the data (az:// is the container, not the account).
zenml artifact-store register annotation-loop-azure-artifacts --flavor=azure \
    --path="az://$CONTAINER/zenml-artifacts" \
    --authentication_secret=annotation-loop-azure

# 3. Label Studio annotator; its API key is read from the secret, never stored in the config.
zenml annotator register annotation-loop-label-studio --flavor=label_studio \
    --instance_url="$LABEL_STUDIO_INSTANCE_URL" \
    --port="$LABEL_STUDIO_PORT" \
    --authentication_secret=annotation-loop-label-studio

# 4. The stack: local orchestrator ("default"), Blob Storage artifacts, Label Studio.
zenml stack register annotation-loop-azure \
    -a annotation-loop-azure-artifacts \
    -o default \
    --annotator annotation-loop-label-studio
zenml stack set annotation-loop-azure
