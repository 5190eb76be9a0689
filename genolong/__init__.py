"""genolong: long-range models of DNA at single-base resolution.

Public API re-exports only. Importing genolong is light: Lightning, Triton and the readers' native libraries
load when first used.
"""

from genolong.errors import GenoLongError

__version__ = "0.1.0"

__all__ = ["GenoLongError", "__version__"]
