"""Continuous-annotation loop: the library code behind the ZenML steps.

Nothing in this package imports ZenML except `stacks` and `registry`; the steps in
`steps/` are thin wrappers that call into here.
"""
