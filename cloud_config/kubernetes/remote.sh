#!/usr/bin/env bash
# Running the pipelines' steps on a Kubernetes cluster (EKS, GKE, AKS or any other), next to
# the cloud's bucket. Two ways:
#
#   bash cloud_config/kubernetes/remote.sh CLOUD step-operator   GPU for `train_model` only: a
#        Kubernetes step operator added to the `annotation-loop-CLOUD` stack that run.py uses
#        (run.py re-registers that stack's artifact store, orchestrator and annotator on every
#        call, and leaves other components alone, so this survives). Then add
#        gpu_step_operator.yaml's `steps:` block to configs/training.yaml.
#   bash cloud_config/kubernetes/remote.sh CLOUD orchestrator    every step in the cluster: a
#        separate stack `annotation-loop-CLOUD-k8s` sharing the artifact store and annotator;
#        GPU for `train_model` via gpu_orchestrator.yaml. (run.py activates
#        `annotation-loop-CLOUD`, so it does not pick this stack by itself.)
#   CLOUD is aws, gcp or azure: it picks the container registry flavor and the artifact store.
#
# ZenML 0.98's Kubernetes orchestrator and step operator do NOT turn ResourceSettings into pod
# resources (the orchestrator logs "Specifying step resources is not yet supported"): the GPU
# request, node selector and toleration live in pod_settings, in the YAML files next to this.
#
# Before either:
#   - run CLOUD's stack.sh (or `python run.py CLOUD --train` once);
#   - connect to a ZenML server (`zenml login https://zenml.example.com`): ZenML refuses to run
#     remote components from a local store, and remote steps read secrets from the server;
#   - Label Studio must be reachable from the cluster at the annotator's URL (not 127.0.0.1);
#   - kubectl works here with context KUBE_CONTEXT; the namespace exists
#     (`kubectl create namespace zenml`); GPU nodes run the NVIDIA device plugin, so that
#     `nvidia.com/gpu` is schedulable;
#   - Docker runs here and is logged in to the registry (the `local` image builder builds the
#     image from pyproject.toml and pushes it); the nodes may pull from it. Without local Docker
#     use the `kaniko` image builder flavor (builds inside the cluster);
#   - the Kubernetes service account STEP_SERVICE_ACCOUNT is bound to a cloud identity that
#     holds CLOUD's bucket permissions (EKS: IRSA or Pod Identity with aws/iam-policy.json;
#     GKE: Workload Identity with gcp/role.yaml; AKS: Workload Identity with azure/role.json),
#     so no keys travel into the pods.
set -euo pipefail

CLOUD="${1:?usage: remote.sh aws|gcp|azure step-operator|orchestrator}"
MODE="${2:?usage: remote.sh aws|gcp|azure step-operator|orchestrator}"
KUBE_CONTEXT="${KUBE_CONTEXT:-$(kubectl config current-context)}"
NAMESPACE="${KUBE_NAMESPACE:-zenml}"
STEP_SERVICE_ACCOUNT="${STEP_SERVICE_ACCOUNT:-annotation-loop}"

# The Kubernetes client library, in this virtualenv (the image gets pyproject.toml's).
zenml integration install kubernetes -y
case "$CLOUD" in
aws)
    zenml container-registry register annotation-loop-k8s-registry --flavor=aws \
        --uri="${REGISTRY_URI:-123456789012.dkr.ecr.us-east-1.amazonaws.com}"
    ;;
gcp)
    zenml container-registry register annotation-loop-k8s-registry --flavor=gcp \
        --uri="${REGISTRY_URI:-europe-west4-docker.pkg.dev/my-gcp-project/annotation-loop}"
    ;;
azure)
    zenml container-registry register annotation-loop-k8s-registry --flavor=azure \
        --uri="${REGISTRY_URI:-annotationloop.azurecr.io}"
    ;;
*)
    echo "usage: remote.sh aws|gcp|azure step-operator|orchestrator" >&2
    exit 2
    ;;
esac
zenml image-builder register annotation-loop-k8s-docker --flavor=local

case "$MODE" in
step-operator)
    zenml step-operator register annotation-loop-k8s-gpu --flavor=kubernetes \
        --kubernetes_context="$KUBE_CONTEXT" \
        --kubernetes_namespace="$NAMESPACE" \
        --service_account_name="$STEP_SERVICE_ACCOUNT"
    zenml stack update "annotation-loop-$CLOUD" \
        -c annotation-loop-k8s-registry \
        -i annotation-loop-k8s-docker \
        -s annotation-loop-k8s-gpu
    ;;
orchestrator)
    # The orchestrator pod gets a service account with `edit` rights in NAMESPACE (created by
    # ZenML); the step pods run as STEP_SERVICE_ACCOUNT.
    zenml orchestrator register annotation-loop-k8s --flavor=kubernetes \
        --kubernetes_context="$KUBE_CONTEXT" \
        --kubernetes_namespace="$NAMESPACE" \
        --step_pod_service_account_name="$STEP_SERVICE_ACCOUNT"
    zenml stack register "annotation-loop-$CLOUD-k8s" \
        -a "annotation-loop-$CLOUD-artifacts" \
        -o annotation-loop-k8s \
        -c annotation-loop-k8s-registry \
        -i annotation-loop-k8s-docker \
        --annotator annotation-loop-label-studio
    ;;
*)
    echo "usage: remote.sh aws|gcp|azure step-operator|orchestrator" >&2
    exit 2
    ;;
esac
