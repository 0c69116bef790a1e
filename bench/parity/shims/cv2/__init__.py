"""Shim for the parity harness: OpenCV is only used by cfnow's image counterfactuals."""

INPAINT_NS = 0


def _unavailable(*args, **kwargs):
    raise NotImplementedError("cv2 is not available in the parity harness (image CFs are not compared)")


GaussianBlur = _unavailable
inpaint = _unavailable
