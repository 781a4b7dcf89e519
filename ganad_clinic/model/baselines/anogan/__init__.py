"""AnoGAN (Schlegl et al. 2017): networks (`torch_model`), losses (`loss`), training glue (`method`)."""
