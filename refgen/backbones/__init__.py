"""Backbone networks shared by the model families (MLP, ResNet/CNN, U-Net, Transformers,
coupling networks)."""
