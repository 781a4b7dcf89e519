"""ALAD (Zenati et al. 2018): networks (`torch_model`), losses (`loss`), training glue (`method`)."""
