"""tfctl: grow Tokenformer models stage by stage instead of retraining them."""

__version__ = "0.1.0"
