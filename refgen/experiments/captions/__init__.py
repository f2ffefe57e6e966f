"""What the ``text-to-image`` experiment is made of: captions of digits (``text``), the
caption encoder (``encoder``), the caption-conditioned DDPM with cross-attention
(``diffusion``) and the encoder-decoder pixel Transformer (``autoregressive``)."""
from .autoregressive import CaptionPixelTransformer, autoregressive_config
from .diffusion import CaptionDiffusion, CaptionUNet, TextToImageDenoiser, diffusion_config
from .encoder import CaptionEncoder
from . import text

__all__ = ["text", "CaptionEncoder", "CaptionUNet", "TextToImageDenoiser", "CaptionDiffusion",
           "diffusion_config", "CaptionPixelTransformer", "autoregressive_config"]
