"""Behavioural classifiers: the taxonomy, the classifier protocol, the rule baseline and ONNX inference.

Nothing imported from this package at module level pulls in torch: the serving path stays light.
"""
