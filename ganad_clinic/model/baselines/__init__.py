"""Methods the GAN model is judged against: the GAN baselines of the paper (AnoGAN, Efficient-GAN,
ALAD; a folder each, with its networks, losses and training glue) and plain pixel baselines."""
