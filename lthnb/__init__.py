"""lthnb: Lottery Ticket Hypothesis experiments as parameterised notebooks.

tfmot 0.8 needs Keras 2, so the legacy tf_keras must be selected before TensorFlow is imported
anywhere in the process; importing lthnb first takes care of that.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from lthnb.params import Params, ParamsError, load_params  # noqa: E402

__all__ = ["Params", "ParamsError", "load_params"]
