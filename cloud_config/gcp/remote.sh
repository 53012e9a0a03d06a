#!/usr/bin/env bash
# Running the pipelines' steps on Google Cloud instead of on this machine. Two ways:
#
#   bash cloud_config/gcp/remote.sh step-operator   GPU for `train_model` only: a Vertex AI step
#        operator added to the `annotation-loop-gcp` stack that run.py uses (run.py re-registers
#        that stack's artifact store, orchestrator and annotator on every call, and leaves
#        other components alone, so this survives). Then add gpu_step_operator.yaml's
#        `steps:` block to configs/training.yaml.
#   bash cloud_config/gcp/remote.sh orchestrator    every step on Vertex AI Pipelines: a separate
#        stack `annotation-loop-gcp-vertex` sharing the artifact store and annotator; GPU for
#        `train_model` via gpu_orchestrator.yaml. (run.py activates `annotation-loop-gcp`, so
#        it does not pick this stack by itself.)
#
# Kubernetes (GKE) instead of Vertex AI: cloud_config/kubernetes/remote.sh gcp ...
#
# Before either:
#   - run stack.sh (or `python run.py gcp --train` once): the artifact store and annotator exist;
#   - connect to a ZenML server (`zenml login https://zenml.example.com`): ZenML refuses to run
#     remote components from a local store, and remote steps read secrets from the server;
#   - Label Studio must be reachable from Google Cloud at the annotator's URL (not 127.0.0.1);
#   - an Artifact Registry Docker repository exists:
#       gcloud artifacts repositories create annotation-loop --repository-format=docker \
#           --location="$REGION"
#   - this machine's gcloud identity may run Cloud Build and Vertex AI jobs
#     (roles/cloudbuild.builds.editor, roles/aiplatform.user) and act as the job service account
#     (roles/iam.serviceAccountUser on it);
#   - the job service account holds the custom role of README.md on the bucket and
#     roles/artifactregistry.reader on the repository.
set -euo pipefail

MODE="${1:?usage: remote.sh step-operator|orchestrator}"
PROJECT="${LOOP_GCP_PROJECT:-my-gcp-project}"
REGION="${GCP_REGION:-europe-west4}"
JOB_SERVICE_ACCOUNT="annotation-loop@$PROJECT.iam.gserviceaccount.com"
REGISTRY_URI="$REGION-docker.pkg.dev/$PROJECT/annotation-loop"
# g2-standard-4 is 4 vCPU, 16 GB and one NVIDIA L4: the ResourceSettings of train_model.
GPU_MACHINE="g2-standard-4"
GPU_ACCELERATOR="NVIDIA_L4"

# Vertex AI, Cloud Build and friends, in this virtualenv (the image gets pyproject.toml's).
zenml integration install gcp -y
zenml container-registry register annotation-loop-artifact-registry --flavor=gcp \
    --uri="$REGISTRY_URI"
# Cloud Build builds the image from pyproject.toml: no Docker needed here. It uploads the
# build context to the artifact store, which therefore has to be the GCS one.
zenml image-builder register annotation-loop-cloud-build --flavor=gcp --project="$PROJECT"

case "$MODE" in
step-operator)
    # Vertex custom jobs take the GPU count from ResourceSettings(gpu_count=1) but ignore its
    # cpu_count and memory (they warn): the machine type decides those.
    zenml step-operator register annotation-loop-vertex-gpu --flavor=vertex \
        --project="$PROJECT" \
        --region="$REGION" \
        --service_account="$JOB_SERVICE_ACCOUNT" \
        --machine_type="$GPU_MACHINE" \
        --accelerator_type="$GPU_ACCELERATOR" \
        --accelerator_count=1
    zenml stack update annotation-loop-gcp \
        -c annotation-loop-artifact-registry \
        -i annotation-loop-cloud-build \
        -s annotation-loop-vertex-gpu
    ;;
orchestrator)
    # Vertex pipelines honour ResourceSettings (cpu, memory, gpu count); the GPU model comes
    # from node_selector_constraint in gpu_orchestrator.yaml, without which the count is dropped.
    zenml orchestrator register annotation-loop-vertex --flavor=vertex \
        --project="$PROJECT" \
        --location="$REGION" \
        --workload_service_account="$JOB_SERVICE_ACCOUNT"
    zenml stack register annotation-loop-gcp-vertex \
        -a annotation-loop-gcp-artifacts \
        -o annotation-loop-vertex \
        -c annotation-loop-artifact-registry \
        -i annotation-loop-cloud-build \
        --annotator annotation-loop-label-studio
    ;;
*)
    echo "usage: remote.sh step-operator|orchestrator" >&2
    exit 2
    ;;
esac
