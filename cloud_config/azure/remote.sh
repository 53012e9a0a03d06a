#!/usr/bin/env bash
# Running the pipelines' steps on Azure instead of on this machine. Two ways:
#
#   bash cloud_config/azure/remote.sh step-operator   GPU for `train_model` only: an AzureML step
#        operator added to the `annotation-loop-azure` stack that run.py uses (run.py
#        re-registers that stack's artifact store, orchestrator and annotator on every call, and
#        leaves other components alone, so this survives). Then add gpu_step_operator.yaml's
#        `steps:` block to configs/training.yaml.
#   bash cloud_config/azure/remote.sh orchestrator    every step on AzureML: a separate stack
#        `annotation-loop-azure-azureml` sharing the artifact store and annotator; GPU for
#        `train_model` via gpu_orchestrator.yaml. (run.py activates `annotation-loop-azure`, so
#        it does not pick this stack by itself.)
#
# Kubernetes (AKS) instead of AzureML: cloud_config/kubernetes/remote.sh azure ...
#
# Before either:
#   - run stack.sh (or `python run.py azure --train` once): the artifact store and annotator exist;
#   - connect to a ZenML server (`zenml login https://zenml.example.com`): ZenML refuses to run
#     remote components from a local store, and remote steps read secrets from the server;
#   - Label Studio must be reachable from Azure at the annotator's URL (not 127.0.0.1);
#   - an AzureML workspace exists; its container registry is the one used below;
#   - Docker runs here (the `local` image builder builds the image from pyproject.toml and
#     pushes it: `az acr login --name "$ACR_NAME"` first), and `az login` may submit AzureML
#     jobs (AzureML Data Scientist on the workspace);
#   - the GPU cluster exists, or this identity may create it; AzureML quota for the NCasT4_v3
#     family in the region. Creating it up front avoids a silent fallback (see README.md):
#       az ml compute create --name annotation-loop-gpu --type AmlCompute \
#           --size Standard_NC4as_T4_v3 --min-instances 0 --max-instances 1 \
#           --resource-group "$RESOURCE_GROUP" --workspace-name "$WORKSPACE"
set -euo pipefail

MODE="${1:?usage: remote.sh step-operator|orchestrator}"
SUBSCRIPTION_ID="${AZURE_SUBSCRIPTION_ID:-00000000-0000-0000-0000-000000000000}"
RESOURCE_GROUP="${AZURE_RESOURCE_GROUP:-annotation-loop}"
WORKSPACE="${AZUREML_WORKSPACE:-annotation-loop}"
ACR_NAME="${AZURE_ACR_NAME:-annotationloop}"
GPU_CLUSTER="annotation-loop-gpu"
GPU_SIZE="Standard_NC4as_T4_v3"   # 4 vCPU, 28 GiB, 1 NVIDIA T4

# The AzureML SDK and friends, in this virtualenv (the image gets pyproject.toml's).
zenml integration install azure -y
zenml container-registry register annotation-loop-acr --flavor=azure \
    --uri="$ACR_NAME.azurecr.io"
zenml image-builder register annotation-loop-docker --flavor=local

case "$MODE" in
step-operator)
    # AzureML does not read ResourceSettings: the cluster's VM size is the resource request.
    # Note the key: the step operator wants workspace_name, the orchestrator workspace.
    zenml step-operator register annotation-loop-azureml-gpu --flavor=azureml \
        --subscription_id="$SUBSCRIPTION_ID" \
        --resource_group="$RESOURCE_GROUP" \
        --workspace_name="$WORKSPACE" \
        --mode=compute-cluster \
        --compute_name="$GPU_CLUSTER" \
        --size="$GPU_SIZE" \
        --min_instances=0 \
        --max_instances=1
    zenml stack update annotation-loop-azure \
        -c annotation-loop-acr \
        -i annotation-loop-docker \
        -s annotation-loop-azureml-gpu
    ;;
orchestrator)
    # Steps run on serverless compute; train_model moves to the GPU cluster through
    # gpu_orchestrator.yaml.
    zenml orchestrator register annotation-loop-azureml --flavor=azureml \
        --subscription_id="$SUBSCRIPTION_ID" \
        --resource_group="$RESOURCE_GROUP" \
        --workspace="$WORKSPACE"
    zenml stack register annotation-loop-azure-azureml \
        -a annotation-loop-azure-artifacts \
        -o annotation-loop-azureml \
        -c annotation-loop-acr \
        -i annotation-loop-docker \
        --annotator annotation-loop-label-studio
    ;;
*)
    echo "usage: remote.sh step-operator|orchestrator" >&2
    exit 2
    ;;
esac
