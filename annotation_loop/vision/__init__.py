"""Image classification: fine-tune a pretrained backbone, predict, evaluate.

Plain PyTorch, no ZenML: the pipeline steps call into here. Import from the submodules;
this package imports nothing, so that `vision.checkpoint` stays free of torch.
"""
