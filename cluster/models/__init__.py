"""Model tooling on the operator's machine: import scikit-learn models as verified ONNX versions.

Only here are pickles ever loaded; hosts receive ONNX files and check their sha256.
"""
