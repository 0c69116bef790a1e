"""Shim for the parity harness: counterplots is only used by cfnow's plotting helpers."""


def _unavailable(*args, **kwargs):
    raise NotImplementedError("counterplots is not available in the parity harness (plots are not needed)")


CreatePlot = _unavailable
