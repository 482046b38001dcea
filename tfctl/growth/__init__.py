"""Growth of a trained Tokenformer: more parameter tokens per layer, optionally more layers.

Pure torch on configs and state dicts (tokens, depth, optimizer state, the preservation check); only
`grow_model_dir` touches files. See docs/growth.md.
"""

from tfctl.growth.depth import layer_sources
from tfctl.growth.grow_model_dir import grow_model_dir
from tfctl.growth.optimizer import grow_optimizer_state
from tfctl.growth.state_dict import grow
from tfctl.growth.target import target_config
from tfctl.growth.tokens import DEFAULT_POLICY, POLICIES, grow_param_tokens
from tfctl.growth.verify import PRESERVE_TOLERANCE, GrowthReport, verify_growth

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "PRESERVE_TOLERANCE",
    "GrowthReport",
    "grow",
    "grow_model_dir",
    "grow_optimizer_state",
    "grow_param_tokens",
    "layer_sources",
    "target_config",
    "verify_growth",
]
