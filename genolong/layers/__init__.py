"""Neural-network layers over genolong.ops: Hyena, Mamba2, attention, mLSTM, MLP, norms."""
