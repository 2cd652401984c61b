"""Neural-network parts: encoders (`ENCODERS`), predictors, EMA."""

from openjepa.models.cnn import ConvEncoder, ConvMapEncoder
from openjepa.models.resnet import ResNetEncoder
from openjepa.models.vit import VisionTransformer

# Every encoder: forward(x, idx=None) -> tokens (B, N, D); constructor takes the keyword arguments
# (img_size, patch_size, in_chans, dim, depth, heads, mlp_ratio).
ENCODERS = {
    "vit": VisionTransformer,
    "cnn": ConvEncoder,  # one latent per frame (N = 1); for control observations (world_model)
    "cnn_map": ConvMapEncoder,  # a latent map (N = h*w cells) for the world model's conv predictor
    "resnet": ResNetEncoder,  # a token grid (N = (H/p)(W/p) cells) for the image methods (ijepa, lejepa, mae)
}
