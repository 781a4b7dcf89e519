"""The paper's method (Rafiee Sevyeri & Fevens): networks (`torch_model`), score terms (`terms`),
losses (`loss`), calibration of the terms (`calibration`) and the training glue (`method`)."""
