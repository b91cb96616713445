"""Adversarial training: losses, the data registry and the accelerate trainer."""
