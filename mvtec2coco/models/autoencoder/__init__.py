"""Reconstruction baseline trained on good images only: a convolutional autoencoder (or VAE)."""
