"""Speed paths of the ML, each behind a setting where it changes behaviour (`SpeedOptions`, built from settings).

options (what is on) · layout (channels-last memory and regional torch.compile of the UNet's repeated blocks,
applied once to a loaded base) · fused_lora (generation with the LoRA folded into the base weights for one run,
restored bit for bit afterwards).
"""

from pipeline.speed.fused_lora import lora_fused
from pipeline.speed.layout import apply_to_base
from pipeline.speed.options import SpeedOptions

__all__ = ["SpeedOptions", "apply_to_base", "lora_fused"]
