"""GANAD Clinic: anomaly screening of blood-smear slides with a GAN + autoencoder."""

__version__ = "0.1.0"
