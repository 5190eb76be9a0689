"""Neural-network layers over genolong.ops: Hyena, Mamba2, attention, mLSTM, MLP, norms."""

from genolong.layers.attention import Attention
from genolong.layers.hyena import HyenaFilter, HyenaOperator
from genolong.layers.mamba2 import Mamba2Mixer
from genolong.layers.mlp import GatedMLP
from genolong.layers.mlstm import MLSTMLayer
from genolong.layers.norm import GatedRMSNorm, MultiHeadNorm, RMSNorm

__all__ = [
    "Attention",
    "GatedMLP",
    "GatedRMSNorm",
    "HyenaFilter",
    "HyenaOperator",
    "MLSTMLayer",
    "Mamba2Mixer",
    "MultiHeadNorm",
    "RMSNorm",
]
