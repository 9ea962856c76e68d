"""What makes the cloak: the optimizer, the views it trains through, the visibility budget, the targets
and the presets that set them."""
