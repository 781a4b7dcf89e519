"""Methods the GAN model is judged against: plain pixel baselines here, GAN baselines later."""
