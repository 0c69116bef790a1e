"""Shim for the parity harness: scikit-image is only used by cfnow's image counterfactuals."""
