"""Operators (long convolution, SSD scan, mLSTM, short convolution): references, fast paths, dispatch."""
