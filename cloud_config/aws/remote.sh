#!/usr/bin/env bash
# Running the pipelines' steps on AWS instead of on this machine. Two ways:
#
#   bash cloud_config/aws/remote.sh step-operator   GPU for `train_model` only: a SageMaker step
#        operator added to the `annotation-loop-aws` stack that run.py uses (run.py re-registers
#        that stack's artifact store, orchestrator and annotator on every call, and leaves
#        other components alone, so this survives). Then add gpu_step_operator.yaml's
#        `steps:` block to configs/training.yaml.
#   bash cloud_config/aws/remote.sh orchestrator    every step on SageMaker: a separate stack
#        `annotation-loop-aws-sagemaker` sharing the artifact store and annotator; GPU for
#        `train_model` via gpu_orchestrator.yaml. (run.py activates `annotation-loop-aws`, so
#        it does not pick this stack by itself.)
#
# Kubernetes (EKS) instead of SageMaker: cloud_config/kubernetes/remote.sh aws ...
#
# Before either:
#   - run stack.sh (or `python run.py aws --train` once): the artifact store and annotator exist;
#   - connect to a ZenML server (`zenml login https://zenml.example.com`): ZenML refuses to run
#     remote components from a local store, and remote steps read secrets from the server;
#   - Label Studio must be reachable from AWS at the annotator's URL (not 127.0.0.1);
#   - Docker runs here (the `local` image builder builds the image from pyproject.toml and
#     pushes it to ECR; `aws ecr get-login-password | docker login ...` first);
#   - this machine has AWS credentials (aws configure / SSO) allowed to push to ECR and start
#     SageMaker jobs;
#   - the SageMaker execution role holds iam-policy.json for the bucket, plus
#     AmazonSageMakerFullAccess or narrower SageMaker permissions, and may pull from ECR.
set -euo pipefail

MODE="${1:?usage: remote.sh step-operator|orchestrator}"
REGION="${AWS_DEFAULT_REGION:-us-east-1}"
ACCOUNT_ID="${AWS_ACCOUNT_ID:-123456789012}"
ECR_URI="$ACCOUNT_ID.dkr.ecr.$REGION.amazonaws.com"   # ZenML pushes to repositories under it
EXECUTION_ROLE="${SAGEMAKER_EXECUTION_ROLE:-arn:aws:iam::$ACCOUNT_ID:role/annotation-loop-sagemaker}"
GPU_INSTANCE="ml.g4dn.xlarge"   # 4 vCPU, 16 GiB, 1 NVIDIA T4: the ResourceSettings of train_model

# The SageMaker SDK and friends, in this virtualenv (the image gets them from pyproject.toml).
zenml integration install aws s3 -y
zenml container-registry register annotation-loop-ecr --flavor=aws --uri="$ECR_URI"
zenml image-builder register annotation-loop-docker --flavor=local

case "$MODE" in
step-operator)
    # SageMaker ignores ResourceSettings (it warns); the instance type is the resource request.
    zenml step-operator register annotation-loop-sagemaker-gpu --flavor=sagemaker \
        --role="$EXECUTION_ROLE" \
        --instance_type="$GPU_INSTANCE"
    zenml stack update annotation-loop-aws \
        -c annotation-loop-ecr \
        -i annotation-loop-docker \
        -s annotation-loop-sagemaker-gpu
    ;;
orchestrator)
    # Steps without settings run on ml.m5.large; train_model gets GPU_INSTANCE from
    # gpu_orchestrator.yaml.
    zenml orchestrator register annotation-loop-sagemaker --flavor=sagemaker \
        --execution_role="$EXECUTION_ROLE" \
        --region="$REGION"
    zenml stack register annotation-loop-aws-sagemaker \
        -a annotation-loop-aws-artifacts \
        -o annotation-loop-sagemaker \
        -c annotation-loop-ecr \
        -i annotation-loop-docker \
        --annotator annotation-loop-label-studio
    ;;
*)
    echo "usage: remote.sh step-operator|orchestrator" >&2
    exit 2
    ;;
esac
