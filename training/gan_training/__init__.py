"""gan_training: train GAN generators and export them to the model repository.

Run ``gan-train fit ...`` then ``gan-train export ...`` (see :mod:`gan_training.cli`).
"""
