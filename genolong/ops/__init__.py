"""Operators (long convolution, SSD scan, mLSTM, short convolution): references, fast paths, dispatch.

Each op lives in its own folder with ``reference.py`` (the spec, step by step), a fast PyTorch path and an
``__init__`` holding the public function; ``backend="auto" | "torch" | "triton" | "reference"`` picks the
implementation (see ``genolong.ops._backend``).
"""

from genolong.ops._backend import BACKENDS, Backend
from genolong.ops.long_conv import long_conv, long_conv_tail
from genolong.ops.mlstm import MLSTMState, mlstm
from genolong.ops.short_conv import short_conv
from genolong.ops.ssd import ssd_scan

__all__ = ["BACKENDS", "Backend", "MLSTMState", "long_conv", "long_conv_tail", "mlstm", "short_conv", "ssd_scan"]
